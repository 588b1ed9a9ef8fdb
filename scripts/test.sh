#!/usr/bin/env bash
# Run every test: core unit/property tests, then the integration tests against
# a throwaway PostgreSQL 15 cluster with the extension installed, then any
# extra stages (executable tests/run-*.sh). Ends with one summary line
#   tests: N passed, N failed
# summed over every `test result:` line, and exits non-zero if any stage failed.
#
# Env: API_KEYS_TEST_PORT (default 25432) for the throwaway cluster;
# API_KEYS_SKIP_UPGRADE_TEST=1 skips the upgrade stage (scripts/upgrade-test.sh).
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"

# Below 32768: outside the kernel's ephemeral range, so no client socket can hold it.
PORT=${API_KEYS_TEST_PORT:-25432}
LOG=$(mktemp /tmp/api-keys-test-log.XXXXXX)
CLUSTER_DIR=""
failed_stages=()

summary() {
  awk '/test result:/ {
         for (i = 2; i <= NF; i++) {
           if ($i ~ /^passed;?$/) passed += $(i - 1)
           if ($i ~ /^failed;?$/) failed += $(i - 1)
         }
       }
       END { printf "tests: %d passed, %d failed\n", passed, failed }' "$LOG"
}

cleanup() {
  local rc=$?
  if [[ -n $CLUSTER_DIR ]]; then
    bash scripts/cluster.sh stop "$CLUSTER_DIR" || true
    as_root rm -rf "$CLUSTER_DIR" || true
  fi
  if ((${#failed_stages[@]})); then
    log "failed stages: ${failed_stages[*]}"
  elif ((rc)); then
    log "test.sh aborted (exit $rc) before all stages ran"
  fi
  summary
  rm -f "$LOG"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Run one test stage with its output tee'd into $LOG; a failing stage is
# recorded and the remaining stages still run.
stage() {
  log "$*"
  if ! "$@" 2>&1 | tee -a "$LOG"; then
    failed_stages+=("'$*'")
  fi
}

# 1. Toolchain and pure tests (no PostgreSQL needed).
bash scripts/setup.sh
stage cargo test --no-fail-fast -p api-keys-core

# 2a. Upgrade stage: 0.1.0 -> current with data, compared with a fresh
# install (own cluster on API_KEYS_UPGRADE_PORT, default 25434).
# API_KEYS_SKIP_UPGRADE_TEST=1 skips it (local iterations).
if [[ ${API_KEYS_SKIP_UPGRADE_TEST:-} == 1 ]]; then
  log "skipping the upgrade stage (API_KEYS_SKIP_UPGRADE_TEST=1)"
else
  stage bash scripts/upgrade-test.sh
fi

# 2. Extension + throwaway cluster + template database with the extension.
bash scripts/install-extension.sh
CLUSTER_DIR=$(mktemp -d /tmp/api-keys-test.XXXXXX)
bash scripts/cluster.sh start "$CLUSTER_DIR" "$PORT" >/dev/null
URL="postgresql://postgres@127.0.0.1:$PORT/postgres"
psql "$URL" -X -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE DATABASE api_keys_template;
\c api_keys_template
CREATE EXTENSION api_keys;
SQL

export API_KEYS_TEST_URL=$URL
export API_KEYS_TEST_TEMPLATE=api_keys_template
export API_KEYS_TEST_PGBIN=$PG_BIN

# 3. Integration tests.
stage cargo test --no-fail-fast -p api-keys-tests -- --test-threads=8

# 4. The admin HTTP service against the same cluster (its tests start the
# service on 127.0.0.1:0, connected as a LOGIN role granted api_keys_admin),
# with schemathesis against its OpenAPI document.
stage env API_KEYS_SCHEMATHESIS="${API_KEYS_VENV:-/opt/api-keys-venv}/bin/schemathesis" \
  cargo test --no-fail-fast -p api-keys-admin -- --test-threads=4

# 5. Hook for later stages: every executable tests/run-*.sh, in name order,
# with the API_KEYS_TEST_* variables above. Lines they print in cargo's
# `test result: ok. N passed; M failed; ...` form count in the summary.
for extra in tests/run-*.sh; do
  if [[ -x $extra ]]; then stage "$extra"; fi
done

((${#failed_stages[@]} == 0))
