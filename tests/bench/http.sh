#!/usr/bin/env bash
# Admin HTTP service benchmark (issue 10): POST /v1/verify through the real
# service against the same verification through pgbench over TCP loopback,
# same run, same client counts.
#
#   bash tests/bench/http.sh
#
# For each client count (2, 16, 64): wrk (Debian) with a fixed request for
# BENCH_SECONDS, and pgbench -M prepared with the same number of clients
# running (a) the verify the caller's request asks for, and (b) the one
# statement the service sends for it (the caller's key checked and the
# requested verify done in one query). Ratios are between runs of this
# script only. Loopback only; every run is bounded in time.
#
# Env: BENCH_SECONDS (10), BENCH_CLIENTS ("2 16 64"), BENCH_PORT (25465),
#      BENCH_HTTP (127.0.0.1:25466), BENCH_SKIP_INSTALL=1.
set -euo pipefail
# shellcheck source=../../scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
cd "$ROOT"

SECS=${BENCH_SECONDS:-10}
CLIENTS=${BENCH_CLIENTS:-"2 16 64"}
PORT=${BENCH_PORT:-25465}
HTTP=${BENCH_HTTP:-127.0.0.1:25466}
command -v wrk >/dev/null || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >/dev/null

[[ ${BENCH_SKIP_INSTALL:-} == 1 ]] || bash scripts/install-extension.sh >/dev/null
cargo build --release --quiet -p api-keys-admin
ADMIN_BIN=$ROOT/target/release/api-keys-admin

DIR=$(mktemp -d /tmp/api-keys-httpbench.XXXXXX)
WORK=$(mktemp -d /tmp/api-keys-httpbench-scripts.XXXXXX)
SERVE_PID=""
cleanup() {
  [[ -n $SERVE_PID ]] && kill "$SERVE_PID" 2>/dev/null || true
  bash scripts/cluster.sh stop "$DIR" >/dev/null 2>&1 || true
  as_root rm -rf "$DIR" "$WORK"
}
trap cleanup EXIT
bash scripts/cluster.sh start "$DIR" "$PORT" >/dev/null
SU="postgresql://postgres@127.0.0.1:$PORT"
psql() { command psql -X -q -v ON_ERROR_STOP=1 "$@"; }
psql "$SU/postgres" -c 'CREATE DATABASE bench'
psql "$SU/bench" <<'SQL'
CREATE EXTENSION api_keys;
CREATE ROLE bench_service LOGIN;
GRANT api_keys_admin TO bench_service;
SQL
SERVICE="postgresql://bench_service@127.0.0.1:$PORT/bench"
ADMIN_TOKEN=$("$ADMIN_BIN" bootstrap --database-url "$SERVICE" 2>/dev/null)
USER_TOKEN=$(psql "$SU/bench" -tA -c "SELECT token FROM api_keys.api_key_issue('user', '42', scopes => ARRAY['read'])")
# usage tracking stays on, as in production; both sides verify the same keys

"$ADMIN_BIN" serve --database-url "$SERVICE" --listen "$HTTP" >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 100); do curl -fsS "http://$HTTP/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "http://$HTTP/healthz" >/dev/null

cat >"$WORK/verify.lua" <<LUA
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $ADMIN_TOKEN"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"token":"$USER_TOKEN","required_scopes":["read"]}'
LUA
# the check that the request really succeeds, before measuring it
code=$(curl -s -o "$WORK/answer" -w '%{http_code}' -X POST -H "Authorization: Bearer $ADMIN_TOKEN" \
  -H 'content-type: application/json' -d "{\"token\":\"$USER_TOKEN\",\"required_scopes\":[\"read\"]}" "http://$HTTP/v1/verify")
[[ $code == 200 ]] && grep -q '"code":"valid"' "$WORK/answer" || die "POST /v1/verify answered $code: $(cat "$WORK/answer")"

echo "SELECT * FROM api_keys.api_key_verify('$USER_TOKEN', ARRAY['read']);" >"$WORK/verify.sql"
# (pgbench would read the ':verify' of 'keys:verify' as a variable: E'\x3a' is the colon)
echo "SELECT v.code, (SELECT to_jsonb(w) FROM api_keys.api_key_verify('$USER_TOKEN', ARRAY['read']) w) FROM api_keys.api_key_verify('$ADMIN_TOKEN', ARRAY[E'keys\\x3averify']) v;" >"$WORK/service.sql"

tps() {
  command pgbench -n -M prepared -c "$1" -j 2 -T "$SECS" -f "$2" "postgresql://bench_service@127.0.0.1:$PORT/bench" 2>/dev/null |
    awk '/^tps/ {print int($3); exit}'
}
to_ms() {
  awk '{ v = $1; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 } printf "%.2f", v }'
}

printf '%-8s %12s %10s %10s %12s %12s %10s %10s\n' clients http_rps p50_ms p99_ms sql_tps service_tps http/sql http/svc
for c in $CLIENTS; do
  threads=$((c < 2 ? c : 2))
  out=$(wrk -t "$threads" -c "$c" -d "${SECS}s" --latency -s "$WORK/verify.lua" "http://$HTTP/v1/verify")
  rps=$(awk '/^Requests\/sec:/ {print int($2)}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out" | to_ms)
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out" | to_ms)
  errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out")
  [[ -z $errors ]] || log "wrk at $c clients: $errors"
  sql=$(tps "$c" "$WORK/verify.sql")
  svc=$(tps "$c" "$WORK/service.sql")
  printf '%-8s %12s %10s %10s %12s %12s %10.3f %10.3f\n' "$c" "$rps" "$p50" "$p99" "$sql" "$svc" \
    "$(awk -v a="$rps" -v b="$sql" 'BEGIN {print a / b}')" "$(awk -v a="$rps" -v b="$svc" 'BEGIN {print a / b}')"
done
grep -qF "$USER_TOKEN" "$WORK/serve.log" && die "the service log holds a token" || true
