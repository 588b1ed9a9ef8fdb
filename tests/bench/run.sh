#!/usr/bin/env bash
# Verify-path benchmark (issue 4): one command, a throwaway cluster, pgbench.
#
#   bash tests/bench/run.sh
#
# For each store size (10 000 and 1 000 000 keys) and each variant, pgbench
# runs -M prepared with 2 clients for a fixed duration; several rounds in a
# rotating order, and the median tps is reported. Ratios are computed between
# variants measured in the same run, never against numbers from elsewhere.
#
#   0 select1     SELECT 1: the machine's per-call baseline (a prepared round trip)
#   1 floor       SELECT <the columns verify returns> WHERE token_hash = sha256(token)
#                 on the unique index: the minimal SQL an expert writes by hand
#   2 plpgsql     a hand-written PL/pgSQL verify (hash, look up, check revoked/expired/scopes)
#   3 verify      SELECT * FROM api_keys.api_key_verify(…), usage tracking off
#   3f verify_fscan verify with api_keys.verify_custom_scan = off: the FROM form as a
#                 plain FunctionScan instead of the custom scan (extension/src/scan.rs);
#                 verify / verify_fscan is that scan's saving
#   3e verify_expr SELECT api_keys.api_key_verify(…) (one composite column), tracking off
#   3c verify_cols SELECT (v).* FROM (SELECT api_keys.api_key_verify(…) v OFFSET 0) s:
#                 every column like the FROM form, but the call is in a select list
#                 (no FunctionScan and its tuplestore), tracking off
#   3d definer_set the same C symbol declared in schema bench as SECURITY DEFINER with
#                 SET search_path (how verify was declared before SPEC §2's hot-path
#                 exception), FROM form, tracking off: verify / definer_set is the saving
#   3s definer    the same C symbol, SECURITY DEFINER without SET search_path, FROM
#                 form, tracking off: definer / definer_set isolates SET's cost,
#                 verify / definer SECURITY DEFINER's
#   4 tracked     SELECT * FROM api_keys.api_key_verify(…), usage tracking on (shared memory)
#   5 naive       PL/pgSQL verify + UPDATE last_used_at and a counter on every verify
#   6 issue       api_keys.api_key_issue throughput
#   6f issue_floor its floor: one statement that INSERTs an equivalent key row and
#                 its audit row (what issue must write, without checks or a token)
#
# floor, verify and tracked also run at each further client count of
# BENCH_CLIENTS (floor@16, verify@16, tracked@16, …): tracking must hold under
# contention, and the verify/floor ratio is shown at each load.
# Every variant is reported with its median and its spread over the rounds
# ((max - min) / median); every ratio with its median and the range of the
# per-round ratios (each round measures every variant once, in a rotating order).
# After the rounds, one extra issue run with track_functions = all shows where
# an issue's time goes, function by function (pg_stat_user_functions).
#
# Env: BENCH_SECONDS (6), BENCH_ROUNDS (5), BENCH_SIZES ("10000 1000000"; add
#      10000000 for the 10M-key size, which takes a few minutes to fill),
#      BENCH_CLIENTS ("2 16 64"; the first is the base load of every variant),
#      BENCH_VARIANTS (all; a space-separated subset), BENCH_PORT (25460),
#      BENCH_TOKENS (20 hot keys), BENCH_SKIP_INSTALL=1.
set -euo pipefail
# shellcheck source=../../scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
cd "$ROOT"

SECS=${BENCH_SECONDS:-6}
ROUNDS=${BENCH_ROUNDS:-5}
SIZES=${BENCH_SIZES:-"10000 1000000"}
read -r -a CLIENTS <<<"${BENCH_CLIENTS:-2 16 64}"
PORT=${BENCH_PORT:-25460}
NTOKENS=${BENCH_TOKENS:-20}
BASE=${CLIENTS[0]}
if [[ -n ${BENCH_VARIANTS:-} ]]; then
  read -r -a VARIANTS <<<"$BENCH_VARIANTS"
else
  VARIANTS=(select1 floor plpgsql verify verify_fscan verify_expr verify_cols definer_set definer tracked naive issue issue_floor)
  for c in "${CLIENTS[@]:1}"; do VARIANTS+=("floor@$c" "verify@$c" "tracked@$c"); done
fi

[[ ${BENCH_SKIP_INSTALL:-} == 1 ]] || bash scripts/install-extension.sh >/dev/null
DIR=$(mktemp -d /tmp/api-keys-bench.XXXXXX)
WORK=$(mktemp -d /tmp/api-keys-bench-scripts.XXXXXX)
cleanup() {
  bash scripts/cluster.sh stop "$DIR" >/dev/null 2>&1 || true
  as_root rm -rf "$DIR" "$WORK"
}
trap cleanup EXIT
bash scripts/cluster.sh start "$DIR" "$PORT" >/dev/null
# pgbench over the unix socket: the least client overhead, so the ratios
# show the server-side cost of each variant as sharply as possible.
export PGHOST=$DIR PGPORT=$PORT PGUSER=postgres PGDATABASE=bench
psql() { command psql -X -q -v ON_ERROR_STOP=1 "$@"; }

psql -d postgres -c 'CREATE DATABASE bench'
psql -f "$ROOT/tests/bench/schema.sql"
psql -c "INSERT INTO bench.tokens SELECT g, (api_keys.api_key_issue('bench', 'hot' || g, scopes => ARRAY['read'])).token
         FROM generate_series(1, $NTOKENS) g"

# One pgbench script per hot token and variant; pgbench picks among them.
make_scripts() {
  local i token
  for ((i = 1; i <= NTOKENS; i++)); do
    token=$(psql -At -c "SELECT token FROM bench.tokens WHERE i = $i")
    echo "SELECT id, owner_type, owner_id, name, key_type, environment, scopes, metadata, expires_at, revoked_at FROM api_keys.keys WHERE token_hash = sha256('$token'::bytea);" >"$WORK/floor.$i.sql"
    echo "SELECT * FROM bench.plpgsql_verify('$token', '{read}');" >"$WORK/plpgsql.$i.sql"
    echo "SELECT * FROM api_keys.api_key_verify('$token', '{read}');" >"$WORK/verify.$i.sql"
    cp "$WORK/verify.$i.sql" "$WORK/tracked.$i.sql"
    cp "$WORK/verify.$i.sql" "$WORK/verify_fscan.$i.sql"
    echo "SELECT api_keys.api_key_verify('$token', '{read}');" >"$WORK/verify_expr.$i.sql"
    echo "SELECT (v).* FROM (SELECT api_keys.api_key_verify('$token', '{read}') v OFFSET 0) s;" >"$WORK/verify_cols.$i.sql"
    echo "SELECT * FROM bench.verify_definer_set('$token', '{read}');" >"$WORK/definer_set.$i.sql"
    echo "SELECT * FROM bench.verify_definer('$token', '{read}');" >"$WORK/definer.$i.sql"
    echo "SELECT * FROM bench.naive_verify('$token', '{read}');" >"$WORK/naive.$i.sql"
  done
  echo "SELECT 1;" >"$WORK/select1.1.sql"
  printf '%s\n' '\set owner random(1, 1000000)' \
    "SELECT id FROM api_keys.api_key_issue('bench_issue', :owner::text);" >"$WORK/issue.1.sql"
  # What an issue has to write, as one statement (one round trip, one
  # transaction, like the function call): the key row, then its audit row.
  printf '%s\n' '\set owner random(1, 1000000)' \
    "WITH k AS (INSERT INTO api_keys.keys (id, owner_type, owner_id, token_hash, display_prefix, last4, scopes, metadata, created_at)
       VALUES (gen_random_uuid(), 'bench_issue', :owner::text, sha256(uuid_send(gen_random_uuid())), 'ak_live', 'abcd', '{}', '{}', now())
       RETURNING id, owner_type, owner_id)
     INSERT INTO api_keys.audit_log (action, key_id, owner_type, owner_id, current_user_name, details)
     SELECT 'issue', k.id, k.owner_type, k.owner_id, current_user,
            jsonb_build_object('name', NULL, 'key_type', NULL, 'environment', NULL, 'scopes', '[]'::jsonb, 'expires_at', NULL)
       FROM k;" >"$WORK/issue_floor.1.sql"
}

run_variant() { # variant[@clients] → tps
  local v=${1%@*} clients=$BASE files=() f opts=""
  [[ $1 == *@* ]] && clients=${1#*@}
  for f in "$WORK/$v".*.sql; do files+=(-f "$f"); done
  [[ $v == verify || $v == verify_expr || $v == verify_cols || $v == definer_set || $v == definer ]] &&
    opts="-c api_keys.track_usage=off"
  [[ $v == verify_fscan ]] && opts="-c api_keys.track_usage=off -c api_keys.verify_custom_scan=off"
  PGOPTIONS=$opts pgbench -n -M prepared -c "$clients" -j "$((clients < 2 ? clients : 2))" -T "$SECS" "${files[@]}" 2>"$WORK/pgbench.err" |
    awk '/^tps = / { print $3 }' || { cat "$WORK/pgbench.err" >&2; return 1; }
}

fill_to() { # total number of stored keys
  psql <<SQL
DELETE FROM api_keys.keys WHERE owner_type = 'bench_issue';
INSERT INTO api_keys.keys (id, owner_type, owner_id, token_hash, display_prefix, last4)
SELECT gen_random_uuid(), 'bench_filler', g::text, sha256(('filler' || g)::bytea), 'ak', '0000'
  FROM generate_series((SELECT count(*) FROM api_keys.keys) + 1, $1) g;
VACUUM ANALYZE api_keys.keys;
CHECKPOINT;
SQL
}

make_scripts
declare -A TPS
echo "api_keys verify benchmark: pgbench -M prepared over the unix socket, ${BASE} clients (also ${CLIENTS[*]:1} for floor/verify/tracked), ${SECS}s per run, $ROUNDS rounds, $NTOKENS hot keys"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -r), PostgreSQL $("$PG_BIN/postgres" --version | awk '{ print $3 }'), load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
has() { local x; for x in "${VARIANTS[@]}"; do [[ $x == "$1" ]] && return 0; done; return 1; }
for size in $SIZES; do
  fill_to "$size"
  for ((r = 0; r < ROUNDS; r++)); do
    for ((k = 0; k < ${#VARIANTS[@]}; k++)); do
      v=${VARIANTS[$(((k + r) % ${#VARIANTS[@]}))]}
      t=$(run_variant "$v")
      TPS[$size.$v.$r]=$t
      TPS[$size.$v]+="$t "
      [[ $v == issue* ]] && psql -c "DELETE FROM api_keys.keys WHERE owner_type = 'bench_issue'; DELETE FROM api_keys.audit_log WHERE owner_type = 'bench_issue'"
    done
  done
  fill_to "$size" >/dev/null
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

stats() { # values… → "median min max spread"
  printf '%s\n' "$@" | grep . | sort -g | awk '{ a[NR] = $1 }
    END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
          printf "%s %s %s %.1f", m, a[1], a[NR], (m > 0) ? 100 * (a[NR] - a[1]) / m : 0 }'
}

printf '\n%-10s %-12s %12s %10s %10s %8s\n' keys variant "median tps" min max spread
declare -A MED
for size in $SIZES; do
  for v in "${VARIANTS[@]}"; do
    # shellcheck disable=SC2086
    read -r med lo hi spread <<<"$(stats ${TPS[$size.$v]})"
    MED[$size.$v]=$med
    printf '%-10s %-12s %12.0f %10.0f %10.0f %7s%%\n' "$size" "$v" "$med" "$lo" "$hi" "$spread"
  done
done

check() { awk -v r="$1" -v t="$2" 'BEGIN { print (r >= t) ? "ok" : "MISSED" }'; }
# ratio label a b target: the median of a / the median of b, and the range of
# the per-round ratios a[r] / b[r]
ratio() {
  local label=$1 a=$2 b=$3 target=${4:--} size=$5 r per=() lo hi med
  has "$a" && has "$b" || return 0
  med=$(awk -v a="${MED[$size.$a]}" -v b="${MED[$size.$b]}" 'BEGIN { printf "%.3f", a / b }')
  for ((r = 0; r < ROUNDS; r++)); do
    per+=("$(awk -v a="${TPS[$size.$a.$r]}" -v b="${TPS[$size.$b.$r]}" 'BEGIN { printf "%.3f", a / b }')")
  done
  read -r _ lo hi _ <<<"$(stats "${per[@]}")"
  printf '%-44s %8s %15s %8s %s\n' "$label @ $size" "$med" "$lo-$hi" "$target" \
    "$([[ $target == - ]] || check "$med" "${target#>=}")"
}
echo
printf '%-44s %8s %15s %8s\n' ratio median "rounds min-max" target
for size in $SIZES; do
  ratio "(3) verify / (1) floor" verify floor ">=0.9" "$size"
  ratio "(3e) verify_expr / (1) floor" verify_expr floor ">=0.95" "$size"
  ratio "(3c) verify_cols / (1) floor" verify_cols floor ">=0.9" "$size"
  ratio "(3) verify / (3e) verify_expr" verify verify_expr - "$size"
  ratio "(3) verify / (3f) verify_fscan" verify verify_fscan - "$size"
  ratio "(3f) verify_fscan / (1) floor" verify_fscan floor - "$size"
  ratio "(4) tracked / (3) verify" tracked verify ">=0.95" "$size"
  for c in "${CLIENTS[@]:1}"; do
    ratio "(3) verify / (1) floor, $c clients" "verify@$c" "floor@$c" ">=0.9" "$size"
    ratio "(4) tracked / (3) verify, $c clients" "tracked@$c" "verify@$c" ">=0.95" "$size"
  done
  ratio "(3) verify / (2) plpgsql" verify plpgsql - "$size"
  ratio "(5) naive / (4) tracked" naive tracked - "$size"
  ratio "(3) verify / (3d) definer_set" verify definer_set - "$size"
  ratio "(3s) definer / (3d) definer_set" definer definer_set - "$size"
  ratio "(3) verify / (3s) definer" verify definer - "$size"
  ratio "(1) floor / (0) select1" floor select1 - "$size"
  ratio "(3) verify / (0) select1" verify select1 - "$size"
  ratio "(6) issue / (6f) issue_floor" issue issue_floor - "$size"
done
read -r -a sizes <<<"$SIZES"
small=${sizes[0]} large=${sizes[-1]}
if [[ $large != "$small" ]] && has verify; then
  r=$(awk -v a="${MED[$large.verify]}" -v b="${MED[$small.verify]}" 'BEGIN { printf "%.3f", a / b }')
  printf '%-44s %8s %15s %8s %s\n' "(3) @ $large / (3) @ $small" "$r" "" ">=0.9" "$(check "$r" 0.9)"
fi

# Where an issue's time goes: per-function totals of one more issue run.
if has issue; then
  psql -c "SELECT pg_stat_reset()" >/dev/null
  PGOPTIONS="-c track_functions=all" pgbench -n -M prepared -c "$BASE" -j "$((BASE < 2 ? BASE : 2))" -T "$SECS" \
    -f "$WORK/issue.1.sql" 2>/dev/null | awk '/^tps = / { print "\nissue with track_functions = all (timing overhead included): " $3 " tps" }'
  sleep 1
  psql -P footer=off <<'SQL'
SELECT schemaname || '.' || funcname AS function, calls,
       round((self_time * 1000 / calls)::numeric, 2) AS self_us_per_call,
       round((total_time * 1000 / calls)::numeric, 2) AS total_us_per_call,
       round((100 * self_time / sum(self_time) OVER ())::numeric, 1) AS self_pct
  FROM pg_stat_user_functions
 WHERE calls > 0
 ORDER BY self_time DESC
 LIMIT 15;
SQL
  psql -c "DELETE FROM api_keys.keys WHERE owner_type = 'bench_issue'; DELETE FROM api_keys.audit_log WHERE owner_type = 'bench_issue'"
fi
