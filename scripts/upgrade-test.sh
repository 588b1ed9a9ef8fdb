#!/usr/bin/env bash
# Upgrade stage (run by scripts/test.sh): proves that a database created with
# api_keys 0.1.0 (what commit 6124f5a installs), filled with data, and updated
# with `ALTER EXTENSION api_keys UPDATE` to the current version
#   a. answers every verify call exactly as before,
#   b. keeps every key (usage counts included), the configuration and the
#      audit trail,
#   c. has the same catalog as a fresh install of the current version,
#   d. passes the SQL-API integration tests (cargo test, template = an
#      upgraded database),
#   e. rotates keys issued under the old version, and imports keys beside
#      them (tests/upgrade/lifecycle.sql).
# Checks a-c (and the update itself) end in one line in cargo's
# `test result:` form; d prints cargo's own. Exits non-zero if anything
# failed. Leaves the current build installed, whatever happens.
#
# 0.1.0 is built once (`cargo pgrx package` on `git archive 6124f5a`) and
# cached in $API_KEYS_UPGRADE_CACHE (default /var/cache/api-keys-upgrade, or
# ~/.cache/api-keys-upgrade when not root): <commit>/api_keys.so and
# <commit>/api_keys--0.1.0.sql, with the build's target directory beside them.
#
# Env: API_KEYS_UPGRADE_PORT (default 25434) for the throwaway cluster.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"

OLD_COMMIT=6124f5a
OLD_VERSION=0.1.0
PORT=${API_KEYS_UPGRADE_PORT:-25434}
if [[ -n ${API_KEYS_UPGRADE_CACHE:-} ]]; then
  CACHE_ROOT=$API_KEYS_UPGRADE_CACHE
elif [[ $EUID -eq 0 ]]; then
  CACHE_ROOT=/var/cache/api-keys-upgrade
else
  CACHE_ROOT=${XDG_CACHE_HOME:-$HOME/.cache}/api-keys-upgrade
fi
CACHE=$CACHE_ROOT/$OLD_COMMIT
SQL=$ROOT/tests/upgrade
LIB_WAIT_SECONDS=${API_KEYS_UPGRADE_LIB_WAIT:-600}

SYSTEM_SO=$PKGLIBDIR/api_keys.so
OLD_SQL_NAME=api_keys--$OLD_VERSION.sql

STARTED=$SECONDS
WORK=$(mktemp -d /tmp/api-keys-upgrade-work.XXXXXX)
CLUSTER_DIR=""
SWAPPED=0          # the system api_keys.so is the cached 0.1.0 one
OLD_SQL_STATE=""   # "", "added" or "replaced": what we did to $EXTDIR/$OLD_SQL_NAME
RESULT_PRINTED=0
checks_passed=0
checks_failed=0
failed_names=()

url() { echo "postgresql://postgres@127.0.0.1:$PORT/$1"; }
# psql against database $1 of the throwaway cluster; extra arguments follow.
sql() { local db=$1; shift; psql "$(url "$db")" -X -q -v ON_ERROR_STOP=1 "$@"; }

# Processes that have the system api_keys.so mapped (the file as it is now,
# not an older one that was replaced and shows as "(deleted)").
library_users() {
  local pid
  for pid in $(pgrep -x postgres || true); do
    if as_root cat "/proc/$pid/maps" 2>/dev/null | grep -q -- " ${SYSTEM_SO}\$"; then
      echo "$pid"
    fi
  done
}

# Wait (up to LIB_WAIT_SECONDS, polling every 20 s after a few quick looks
# for a server that is just exiting) until no running server has the system
# api_keys.so loaded: overwriting a loaded library can crash it.
wait_library_unused() {
  local waited=0 users
  while users=$(library_users) && [[ -n $users ]]; do
    if ((waited >= LIB_WAIT_SECONDS)); then
      # shellcheck disable=SC2086
      ps -o pid=,args= -p "$(echo $users | tr ' ' ,)" >&2 || true
      die "upgrade stage: after ${waited}s PostgreSQL processes (above) still have $SYSTEM_SO loaded; stop that server and rerun"
    fi
    if ((waited == 3)); then
      log "waiting for PostgreSQL to release $SYSTEM_SO before replacing it (polling every 20 s, up to ${LIB_WAIT_SECONDS}s):"
      # shellcheck disable=SC2086
      ps -o pid=,args= -p "$(echo $users | tr ' ' ,)" >&2 || true
    fi
    if ((waited < 3)); then
      sleep 1
      waited=$((waited + 1))
    else
      sleep 20
      waited=$((waited + 20))
    fi
  done
}

# Put the current build's library back (from the copy saved right after
# install-extension.sh), and the extension directory as it was.
restore_current() {
  if ((SWAPPED)); then
    wait_library_unused
    log "restoring the current api_keys.so"
    as_root install -m 0755 "$WORK/api_keys.current.so" "$SYSTEM_SO"
    SWAPPED=0
  fi
}

restore_old_sql() {
  case $OLD_SQL_STATE in
    added) as_root rm -f "$EXTDIR/$OLD_SQL_NAME" ;;
    replaced) as_root install -m 0644 "$WORK/$OLD_SQL_NAME.orig" "$EXTDIR/$OLD_SQL_NAME" ;;
  esac
  OLD_SQL_STATE=""
}

print_result() {
  local status=ok
  ((checks_failed == 0)) || status=FAILED
  printf 'test result: %s. %d passed; %d failed; 0 ignored; 0 measured; 0 filtered out; finished in %ds\n' \
    "$status" "$checks_passed" "$checks_failed" $((SECONDS - STARTED))
  RESULT_PRINTED=1
}

cleanup() {
  local rc=$?
  set +e
  if [[ -n $CLUSTER_DIR ]]; then
    if ((rc)) && ((RESULT_PRINTED == 0)) && [[ -f $CLUSTER_DIR/log ]]; then
      log "last lines of the upgrade cluster's server log:"
      as_root tail -n 20 "$CLUSTER_DIR/log" >&2
    fi
    bash scripts/cluster.sh stop "$CLUSTER_DIR" >/dev/null 2>&1
    as_root rm -rf "$CLUSTER_DIR"
  fi
  restore_current
  restore_old_sql
  rm -rf "$WORK"
  [[ -n ${OLD_SRC:-} ]] && rm -rf "$OLD_SRC"
  if ((rc)) && ((RESULT_PRINTED == 0)); then
    # aborted before the checks: count it as one failed test in the summary
    log "upgrade stage aborted (exit $rc) before its checks ran; see the messages above"
    checks_failed=$((checks_failed + 1))
    print_result
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Record one check: name, then the status of the command that decided it.
check() {
  local name=$1 ok=$2
  if ((ok)); then
    printf 'test upgrade::%s ... ok\n' "$name"
    checks_passed=$((checks_passed + 1))
  else
    printf 'test upgrade::%s ... FAILED\n' "$name"
    checks_failed=$((checks_failed + 1))
    failed_names+=("$name")
  fi
}

# --- 0. The 0.1.0 build, cached ------------------------------------------
build_old() {
  if [[ -f $CACHE/api_keys.so && -f $CACHE/$OLD_SQL_NAME ]]; then
    log "api_keys $OLD_VERSION ($OLD_COMMIT) cached in $CACHE"
    return
  fi
  git -C "$ROOT" cat-file -e "$OLD_COMMIT^{commit}" 2>/dev/null ||
    die "upgrade stage: commit $OLD_COMMIT (api_keys $OLD_VERSION) is not in this clone's history (shallow clone? run git fetch --unshallow)"
  log "building api_keys $OLD_VERSION from $OLD_COMMIT (once; cached in $CACHE)"
  mkdir -p "$CACHE_ROOT/target"
  # a fixed source path keeps the cached target directory's fingerprints valid
  OLD_SRC=$CACHE_ROOT/src-$OLD_COMMIT
  rm -rf "$OLD_SRC"
  mkdir -p "$OLD_SRC"
  git -C "$ROOT" archive "$OLD_COMMIT" | tar -x -C "$OLD_SRC"
  (
    cd "$OLD_SRC/extension"
    CARGO_TARGET_DIR=$CACHE_ROOT/target cargo pgrx package --pg-config "$PG_CONFIG" --out-dir "$OLD_SRC/package"
  ) || die "upgrade stage: building api_keys $OLD_VERSION failed"
  local so sql_file
  so=$(find "$OLD_SRC/package" -name api_keys.so -type f | head -n 1)
  sql_file=$(find "$OLD_SRC/package" -name "$OLD_SQL_NAME" -type f | head -n 1)
  [[ -n $so && -n $sql_file ]] ||
    die "upgrade stage: cargo pgrx package left no api_keys.so or $OLD_SQL_NAME under $OLD_SRC/package"
  mkdir -p "$CACHE"
  cp "$sql_file" "$CACHE/$OLD_SQL_NAME.tmp" && mv "$CACHE/$OLD_SQL_NAME.tmp" "$CACHE/$OLD_SQL_NAME"
  cp "$so" "$CACHE/api_keys.so.tmp" && mv "$CACHE/api_keys.so.tmp" "$CACHE/api_keys.so"
  rm -rf "$OLD_SRC"
  OLD_SRC=""
}
build_old

# --- 1. The current build, installed; then 0.1.0's library over it -------
wait_library_unused
bash scripts/install-extension.sh
cp "$SYSTEM_SO" "$WORK/api_keys.current.so"
NEW_VERSION=$(sed -n "s/^default_version *= *'\(.*\)'.*/\1/p" "$EXTDIR/api_keys.control")
[[ -n $NEW_VERSION ]] || die "upgrade stage: no default_version in $EXTDIR/api_keys.control"
log "upgrade $OLD_VERSION -> $NEW_VERSION"
[[ -f $EXTDIR/api_keys--$OLD_VERSION--$NEW_VERSION.sql ]] ||
  log "warning: $EXTDIR/api_keys--$OLD_VERSION--$NEW_VERSION.sql is not installed; ALTER EXTENSION UPDATE will fail"

log "installing api_keys $OLD_VERSION's library and install script"
wait_library_unused
SWAPPED=1
# install(1) writes a new file, so nothing that has the old one mapped is hurt
as_root install -m 0755 "$CACHE/api_keys.so" "$SYSTEM_SO"
if [[ -f $EXTDIR/$OLD_SQL_NAME ]]; then
  if ! cmp -s "$EXTDIR/$OLD_SQL_NAME" "$CACHE/$OLD_SQL_NAME"; then
    cp "$EXTDIR/$OLD_SQL_NAME" "$WORK/$OLD_SQL_NAME.orig"
    OLD_SQL_STATE=replaced
    as_root install -m 0644 "$CACHE/$OLD_SQL_NAME" "$EXTDIR/$OLD_SQL_NAME"
  fi
else
  OLD_SQL_STATE=added
  as_root install -m 0644 "$CACHE/$OLD_SQL_NAME" "$EXTDIR/$OLD_SQL_NAME"
fi

# --- 2. A 0.1.0 cluster with data ------------------------------------------
CLUSTER_DIR=$(mktemp -d /tmp/api-keys-upgrade.XXXXXX)
bash scripts/cluster.sh start "$CLUSTER_DIR" "$PORT" >/dev/null
sql postgres <<SQL
CREATE DATABASE upgraded;
CREATE DATABASE upgraded_template;
\c upgraded
CREATE EXTENSION api_keys VERSION '$OLD_VERSION';
\c upgraded_template
CREATE EXTENSION api_keys VERSION '$OLD_VERSION';
SQL
v=$(sql upgraded -At -c "SELECT extversion FROM pg_extension WHERE extname = 'api_keys'")
[[ $v == "$OLD_VERSION" ]] || die "upgrade stage: CREATE EXTENSION api_keys VERSION '$OLD_VERSION' gave version '$v'"

log "filling database upgraded through the $OLD_VERSION API (tests/upgrade/fill.sql)"
sql upgraded -f "$SQL/fill.sql" >/dev/null ||
  die "upgrade stage: tests/upgrade/fill.sql failed against api_keys $OLD_VERSION"
sql upgraded -v phase=before -f "$SQL/capture.sql" >/dev/null ||
  die "upgrade stage: recording verify results before the update (capture.sql) failed"
sql upgraded -f "$SQL/settle.sql" ||
  die "upgrade stage: waiting for usage counts / snapshotting before the update (settle.sql) failed"
log "$(sql upgraded -At -c "SELECT count(*) || ' tokens, ' || (SELECT count(*) FROM upgrade_fixture.verify_before) || ' verify calls recorded (' || (SELECT count(*) FROM upgrade_fixture.verify_before WHERE valid) || ' valid)' FROM upgrade_fixture.tokens")"

# --- 3. The current library, then ALTER EXTENSION UPDATE -----------------
bash scripts/cluster.sh stop "$CLUSTER_DIR" >/dev/null
restore_current
bash scripts/cluster.sh start "$CLUSTER_DIR" "$PORT" >/dev/null

update_ok=1
for db in upgraded upgraded_template; do
  log "ALTER EXTENSION api_keys UPDATE in $db"
  if ! sql "$db" -c 'ALTER EXTENSION api_keys UPDATE'; then
    log "FAILED: ALTER EXTENSION api_keys UPDATE in $db"
    update_ok=0
    continue
  fi
  v=$(sql "$db" -At -c "SELECT extversion FROM pg_extension WHERE extname = 'api_keys'")
  if [[ $v != "$NEW_VERSION" ]]; then
    log "FAILED: after ALTER EXTENSION api_keys UPDATE, $db has version '$v', not the default '$NEW_VERSION'"
    update_ok=0
  fi
done
check "update_reaches_default_version" "$update_ok"

sql postgres -c 'CREATE DATABASE fresh' >/dev/null
sql fresh -c 'CREATE EXTENSION api_keys' >/dev/null

# --- 4. Checks -------------------------------------------------------------
# (b) first: the verify calls of (a) add usage counts.
log "check (b): keys, usage counts, configuration and audit trail kept"
ok=1
if ! sql upgraded -At -f "$SQL/compare-kept.sql" >"$WORK/kept.txt"; then
  ok=0
  log "FAILED: comparing the kept rows raised an error (above)"
elif [[ -s $WORK/kept.txt ]]; then
  ok=0
  log "FAILED: $(wc -l <"$WORK/kept.txt") differences in kept rows (first 50):"
  head -n 50 "$WORK/kept.txt"
fi
sql upgraded -At -f "$SQL/counts.sql" 2>/dev/null | sed 's/^/    /' || true
check "b_keys_usage_config_and_audit_kept" "$ok"

log "check (a): every verify call answers as before the update"
ok=1
if ! sql upgraded -v phase=after -f "$SQL/capture.sql" >/dev/null ||
  ! sql upgraded -At -f "$SQL/compare-verify.sql" >"$WORK/verify.txt"; then
  ok=0
  log "FAILED: replaying the verify calls raised an error (above)"
elif [[ -s $WORK/verify.txt ]]; then
  ok=0
  log "FAILED: $(wc -l <"$WORK/verify.txt") of $(sql upgraded -At -c 'SELECT count(*) FROM upgrade_fixture.verify_before') verify calls answer differently (first 50):"
  head -n 50 "$WORK/verify.txt"
fi
check "a_verify_answers_unchanged" "$ok"

log "check (e): keys issued under $OLD_VERSION rotate and are imported beside (tests/upgrade/lifecycle.sql)"
ok=1
if ! sql upgraded -At -f "$SQL/lifecycle.sql" >"$WORK/lifecycle.txt"; then
  ok=0
  log "FAILED: tests/upgrade/lifecycle.sql raised an error (above)"
elif [[ -s $WORK/lifecycle.txt ]]; then
  ok=0
  log "FAILED: $(wc -l <"$WORK/lifecycle.txt") lifecycle checks failed:"
  cat "$WORK/lifecycle.txt"
fi
check "e_keys_of_the_old_version_rotate_and_import_coexists" "$ok"

# (c) catalogs: one fact per line (tests/upgrade/catalog.sql), diffed.
log "check (c): the upgraded catalog equals a fresh install's"
catalog_summary() {
  # $1 upgraded, $2 fresh: objects that differ, and how
  awk '
    function obj(line, f) { return f[1] == "member" ? line : f[1] " | " f[2] }
    {
      file = FILENAME == ARGV[1] ? 1 : FILENAME == ARGV[2] ? 2 : 3
      n = split($0, f, / [|] /)
      o = obj($0, f)
      attr = (f[1] == "member") ? "" : f[3]
      if (file == 1) { up[o] = 1 } else if (file == 2) { fr[o] = 1 }
      else if (file == 3) { d[o] = 1; if (attr != "" && !((o, attr) in seen)) { seen[o, attr] = 1; attrs[o] = attrs[o] (attrs[o] == "" ? "" : ", ") attr } }
    }
    END {
      for (o in d) {
        if (!(o in up)) s = "missing after the update (a fresh install has it)"
        else if (!(o in fr)) s = "only after the update (a fresh install has none)"
        else s = "differs: " attrs[o]
        print "  " o ": " s
      }
    }' "$1" "$2" "$3" | sort
}
ok=1
if ! sql upgraded -At -f "$SQL/catalog.sql" >"$WORK/catalog.upgraded" ||
  ! sql fresh -At -f "$SQL/catalog.sql" >"$WORK/catalog.fresh"; then
  ok=0
  log "FAILED: tests/upgrade/catalog.sql raised an error (above)"
elif ! diff -u --label "upgraded ($OLD_VERSION -> $NEW_VERSION)" --label "fresh ($NEW_VERSION)" \
  "$WORK/catalog.upgraded" "$WORK/catalog.fresh" >"$WORK/catalog.diff"; then
  ok=0
  # the changed lines alone, without diff's markers, for the summary
  sed -n '3,$ { /^[-+]/ s/^.//p }' "$WORK/catalog.diff" >"$WORK/catalog.changed"
  only_up=$(grep -c '^-' <(sed -n '3,$p' "$WORK/catalog.diff") || true)
  only_fresh=$(grep -c '^+' <(sed -n '3,$p' "$WORK/catalog.diff") || true)
  {
    echo "FAILED: the upgraded catalog differs from a fresh install's: $only_up lines only in the upgraded database (-), $only_fresh only in the fresh install (+)"
    echo "objects that differ ($(catalog_summary "$WORK/catalog.upgraded" "$WORK/catalog.fresh" "$WORK/catalog.changed" | wc -l)):"
    catalog_summary "$WORK/catalog.upgraded" "$WORK/catalog.fresh" "$WORK/catalog.changed"
    echo "full diff (- upgraded, + fresh install; $(wc -l <"$WORK/catalog.upgraded") vs $(wc -l <"$WORK/catalog.fresh") lines, tests/upgrade/catalog.sql):"
    cat "$WORK/catalog.diff"
    # bodies of SQL/PL functions that exist on both sides but differ
    grep -E '^[-+]function \| .* \| source \| md5 ' "$WORK/catalog.diff" | sed -E 's/^[-+]function \| (.*) \| source \| .*/\1/' |
      sort | uniq -d | while IFS= read -r sig; do
      for db in upgraded fresh; do
        sql "$db" -At -v sig="$sig" >"$WORK/body.$db" <<'SQL'
SELECT prosrc FROM pg_catalog.pg_proc WHERE oid = :'sig'::regprocedure;
SQL
      done
      echo "body of $sig (- upgraded, + fresh install):"
      diff -u --label upgraded --label fresh "$WORK/body.upgraded" "$WORK/body.fresh" | sed -n '3,$p' || true
    done || true
  }
else
  echo "catalogs equal: $(wc -l <"$WORK/catalog.fresh") lines"
fi
check "c_catalog_equals_fresh_install" "$ok"

print_result
if ((checks_failed)); then
  log "upgrade checks failed: ${failed_names[*]}"
fi

# (d) the SQL-API integration tests, with an upgraded database as template.
log "check (d): SQL-API integration tests on an upgraded database (template upgraded_template)"
tests_ok=1
API_KEYS_TEST_URL=$(url postgres) \
  API_KEYS_TEST_TEMPLATE=upgraded_template \
  API_KEYS_TEST_PGBIN=$PG_BIN \
  cargo test --no-fail-fast -p api-keys-tests --test integration -- \
  issue:: verify:: tokens:: security:: bad_input:: hostile:: policy:: hardening:: hot_path:: lifecycle:: mfa:: \
  --test-threads=8 || tests_ok=0
((tests_ok)) || log "FAILED: SQL-API integration tests on an upgraded database"

log "upgrade stage finished in $((SECONDS - STARTED))s"
((checks_failed == 0 && tests_ok))
