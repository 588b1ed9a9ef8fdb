#!/usr/bin/env bash
# Admin HTTP service benchmark (issue 10): POST /v1/verify through the real
# service against the same verification through pgbench over TCP loopback,
# same run, same client counts.
#
#   bash tests/bench/http.sh
#
# For each round and each client count (2, 16, 64), in an order that
# rotates between rounds: wrk (Debian) with a fixed request, and pgbench -M
# prepared with the same number of clients running (sql) the verify the
# caller's request asks for, and (svc) the one statement the service sends
# for it (the caller's key checked and the requested verify done in one
# query). Each run reports its rate, its latency and the CPU microseconds per
# request of the service, of PostgreSQL and of the load generator
# (tests/bench/cpu_per_request.py). Then, per client count: the median over
# the rounds and the spread (min–max), and the HTTP/SQL ratio (taken per
# round, then the median and range). `uptime` is printed with each round:
# the machine may be shared, and only ratios within one run count.
# Loopback only; every run is bounded in time.
#
# Env: BENCH_SECONDS (5), BENCH_ROUNDS (3), BENCH_CLIENTS ("2 16 64"),
#      BENCH_PORT (25465), BENCH_HTTP (127.0.0.1:25466), BENCH_SKIP_INSTALL=1,
#      BENCH_SERVE_ENV (extra environment for the service, e.g.
#      "TOKIO_WORKER_THREADS=1 API_KEYS_SHARED_CONNECTIONS=2"),
#      BENCH_BEFORE_BIN (another api-keys-admin binary, e.g. an earlier
#      commit's: measured as kind "before" in the same rounds, on
#      BENCH_BEFORE_HTTP, default 127.0.0.1:25467).
set -euo pipefail
# shellcheck source=../../scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
cd "$ROOT"

SECS=${BENCH_SECONDS:-5}
ROUNDS=${BENCH_ROUNDS:-3}
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
BEFORE_PID=""
BEFORE_HTTP=${BENCH_BEFORE_HTTP:-127.0.0.1:25467}
cleanup() {
  [[ -n $SERVE_PID ]] && kill "$SERVE_PID" 2>/dev/null || true
  [[ -n $BEFORE_PID ]] && kill "$BEFORE_PID" 2>/dev/null || true
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

# shellcheck disable=SC2086 # BENCH_SERVE_ENV is a list of VAR=value words
env ${BENCH_SERVE_ENV:-} "$ADMIN_BIN" serve --database-url "$SERVICE" --listen "$HTTP" >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
if [[ -n ${BENCH_BEFORE_BIN:-} ]]; then
  "$BENCH_BEFORE_BIN" serve --database-url "$SERVICE" --listen "$BEFORE_HTTP" >"$WORK/before.log" 2>&1 &
  BEFORE_PID=$!
  for _ in $(seq 100); do curl -fsS "http://$BEFORE_HTTP/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
fi
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

# One round trip per request: the transactions the database counts per
# request (each statement is its own transaction; a second statement, a
# re-prepare or a check on checkout would show as more than 1).
xacts() { psql "$SU/bench" -tA -c "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'bench'"; }
idle=$(xacts)
sleep 12
before=$(xacts)
idle=$((before - idle - 1)) # background transactions (usage flusher, autovacuum) in 12 s
for _ in $(seq 200); do
  curl -s -o /dev/null -X POST -H "Authorization: Bearer $ADMIN_TOKEN" -H 'content-type: application/json' \
    -d "{\"token\":\"$USER_TOKEN\",\"required_scopes\":[\"read\"]}" "http://$HTTP/v1/verify"
done
sleep 11 # backends report their counts when idle, at the latest after 10 s
log "database transactions per POST /v1/verify: $(awk -v a="$before" -v b="$(xacts)" -v i="$idle" \
  'BEGIN {printf "%.3f (%d in the background per 12 s left out)", (b - a - 1 - i) / 200, i}')"

echo "SELECT * FROM api_keys.api_key_verify('$USER_TOKEN', ARRAY['read']);" >"$WORK/verify.sql"
# (pgbench would read the ':verify' of 'keys:verify' as a variable: E'\x3a' is the colon)
echo "SELECT v.code, (SELECT to_jsonb(w) FROM api_keys.api_key_verify('$USER_TOKEN', ARRAY['read']) w) FROM api_keys.api_key_verify('$ADMIN_TOKEN', ARRAY[E'keys\\x3averify']) v;" >"$WORK/service.sql"

POSTMASTER=$(as_root head -1 "$DIR/data/postmaster.pid")
MEASURE=$ROOT/tests/bench/cpu_per_request.py
RESULTS=$WORK/results
http() { # clients [pid address]
  local threads=$(($1 < 2 ? $1 : 2))
  "$MEASURE" "$POSTMASTER" "${2:-$SERVE_PID}" -- \
    wrk -t "$threads" -c "$1" -d "${SECS}s" --latency -s "$WORK/verify.lua" "http://${3:-$HTTP}/v1/verify"
}
sql() {
  "$MEASURE" "$POSTMASTER" 0 -- \
    pgbench -n -M prepared -c "$1" -j 2 -T "$SECS" -f "$2" "postgresql://bench_service@127.0.0.1:$PORT/bench"
}

log "machine: $(nproc) CPUs, $(uname -r), $(free -g | awk '/^Mem:/ {print $2 " GiB"}'); service env: ${BENCH_SERVE_ENV:-none}"
log "$ROUNDS rounds of ${SECS}s per run, clients: $CLIENTS"
kinds=(http sql svc)
[[ -n $BEFORE_PID ]] && kinds+=(before)
nk=${#kinds[@]}
for ((round = 1; round <= ROUNDS; round++)); do
  log "round $round: $(uptime | sed 's/.*load/load/')"
  for c in $CLIENTS; do
    for ((k = 0; k < nk; k++)); do
      kind=${kinds[$(((k + round) % nk))]}
      case $kind in
        http) line=$(http "$c") ;;
        before) line=$(http "$c" "$BEFORE_PID" "$BEFORE_HTTP") ;;
        sql) line=$(sql "$c" "$WORK/verify.sql") ;;
        svc) line=$(sql "$c" "$WORK/service.sql") ;;
      esac
      echo "round=$round clients=$c kind=$kind $line" | tee -a "$RESULTS"
    done
  done
done
log "end: $(uptime | sed 's/.*load/load/')"

# Medians and spreads over the rounds; the ratio is taken within each round.
awk '
  { for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    key = f["clients"] SUBSEP f["kind"]; n[key]++
    rate[key, n[key]] = f["rate"]; p50[key, n[key]] = f["p50_ms"]; p99[key, n[key]] = f["p99_ms"]
    svc[key, n[key]] = f["service_us"]; pg[key, n[key]] = f["postgres_us"]; gen[key, n[key]] = f["loadgen_us"]
    r[f["clients"], f["kind"], f["round"]] = f["rate"]; rounds[f["round"]] = 1; cl[f["clients"]] = 1 }
  function med(a, key, k,   i, j, t, v, m) {
    m = 0; for (i = 1; i <= k; i++) v[++m] = a[key, i]
    for (i = 2; i <= m; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
    lo = v[1]; hi = v[m]
    return (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
  }
  END {
    printf "\n%-8s %-5s %9s %13s %8s %8s %11s %12s %11s %9s\n", "clients", "kind", "rate", "spread", "p50_ms", "p99_ms", "service_us", "postgres_us", "loadgen_us", "total_us"
    nk = split("http before sql svc", kinds, " ")
    nc = 0; for (c in cl) cs[++nc] = c + 0
    for (i = 2; i <= nc; i++) { t = cs[i]; for (j = i - 1; j >= 1 && cs[j] > t; j--) cs[j + 1] = cs[j]; cs[j + 1] = t }
    for (ci = 1; ci <= nc; ci++) for (ki = 1; ki <= nk; ki++) {
      c = cs[ci]; kind = kinds[ki]; key = c SUBSEP kind; k = n[key]
      if (!k) continue
      m = med(rate, key, k); spread = sprintf("%d-%d", lo, hi)
      a = med(svc, key, k); b = med(pg, key, k); g = med(gen, key, k)
      printf "%-8s %-5s %9d %13s %8.2f %8.2f %11.1f %12.1f %11.1f %9.1f\n", c, kind, m, spread, med(p50, key, k), med(p99, key, k), a, b, g, a + b + g
    }
    before = ((cs[1], "before", 1) in r)
    printf "\n%-8s %-28s %-28s%s\n", "clients", "http/sql (median, range)", "http/svc (median, range)", before ? "before/sql (median, range)" : ""
    for (ci = 1; ci <= nc; ci++) {
      c = cs[ci]; k = 0
      for (rd in rounds) { k++; x[c, k] = r[c, "http", rd] / r[c, "sql", rd]; y[c, k] = r[c, "http", rd] / r[c, "svc", rd]
                           if (before) z[c, k] = r[c, "before", rd] / r[c, "sql", rd] }
      mx = med(x, c, k); rx = sprintf("%.3f (%.3f-%.3f)", mx, lo, hi)
      my = med(y, c, k); ry = sprintf("%.3f (%.3f-%.3f)", my, lo, hi)
      rz = ""; if (before) { mz = med(z, c, k); rz = sprintf("%.3f (%.3f-%.3f)", mz, lo, hi) }
      printf "%-8s %-28s %-28s%s\n", c, rx, ry, rz
    }
  }' "$RESULTS"
grep -qF "$USER_TOKEN" "$WORK/serve.log" && die "the service log holds a token" || true
