#!/usr/bin/env bash
# Instructions per call of each verify variant, counted by callgrind: a
# figure that does not move with the machine's load (tests/bench/run.sh's
# tps do), to read beside run.sh's ratios on a noisy or shared machine.
#
#   bash tests/bench/instructions.sh
#
# A cluster with BENCH_KEYS stored keys is made and stopped; then, per
# variant, a single-user backend (postgres --single) runs one PL/pgSQL loop
# that executes the variant's statement N1 times (PERFORM: the row is formed
# and discarded), and another backend N2 times, under valgrind
# --tool=callgrind. (I(N2) - I(N1)) / (N2 - N1) is the steady-state cost of
# one execution of the statement's cached plan (executor start, the function
# or the scan, projection, executor end): start-up, shutdown, planning and
# the first, cold execution all cancel. It leaves out what every call pays
# alike (the client, the protocol, parsing the call, a transaction's start
# and commit, sending the row): next to run.sh's tps, which include all of
# it, it isolates the server-side cost of each declaration and form, and does
# not move with the machine's load.
# The variants are run.sh's (see there) that involve no write; verify_fscan
# is verify planned with api_keys.verify_custom_scan = off (the plain
# FunctionScan; set before the loop is planned, which is at its first
# execution: the library is preloaded by the cluster's settings, so the
# planner hook is in place for every variant). verify_some and
# verify_some_fscan (only here, not in run.sh) select three of the FROM
# form's columns, with the custom scan and without.
# With BENCH_PROFILE=1 it also prints, for each of BENCH_PROFILE_VARIANTS
# (floor verify verify_fscan verify_expr), the functions with the most instructions (self)
# per execution, from the same difference of the two runs, function by
# function; and for each pair a:b of BENCH_COMPARE (verify:verify_expr
# verify_expr:floor) the functions where a costs more than b.
#
# Env: BENCH_KEYS (10000), BENCH_N1 (1000), BENCH_N2 (11000), BENCH_PORT (25462),
#      BENCH_VARIANTS, BENCH_PROFILE, BENCH_SKIP_INSTALL=1, BENCH_KEEP (a directory
#      to copy the callgrind files into, for callgrind_annotate --tree=caller).
set -euo pipefail
# shellcheck source=../../scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
cd "$ROOT"

KEYS=${BENCH_KEYS:-10000}
N1=${BENCH_N1:-1000}
N2=${BENCH_N2:-11000}
PORT=${BENCH_PORT:-25462}
read -r -a VARIANTS <<<"${BENCH_VARIANTS:-select1 floor plpgsql verify verify_fscan verify_expr verify_cols definer_set definer}"
command -v valgrind >/dev/null || die "valgrind is not installed (apt-get install valgrind)"
((N2 > N1)) || die "BENCH_N2 must be larger than BENCH_N1"

[[ ${BENCH_SKIP_INSTALL:-} == 1 ]] || bash scripts/install-extension.sh >/dev/null
DIR=$(mktemp -d /tmp/api-keys-instr.XXXXXX)
WORK=$(mktemp -d /tmp/api-keys-instr-work.XXXXXX)
chmod 0755 "$WORK"
as_root chown postgres "$WORK"   # callgrind writes its output as the postgres user
cleanup() {
  bash scripts/cluster.sh stop "$DIR" >/dev/null 2>&1 || true
  as_root rm -rf "$DIR" "$WORK"
}
trap cleanup EXIT
if [[ -n ${BENCH_KEEP:-} ]]; then
  trap 'cp -r "$WORK" "$BENCH_KEEP"; cleanup' EXIT
fi
bash scripts/cluster.sh start "$DIR" "$PORT" >/dev/null
export PGHOST=$DIR PGPORT=$PORT PGUSER=postgres PGDATABASE=bench
psql() { command psql -X -q -v ON_ERROR_STOP=1 "$@"; }
psql -d postgres -c 'CREATE DATABASE bench'
psql -f "$ROOT/tests/bench/schema.sql"
token=$(psql -At -c "SELECT (api_keys.api_key_issue('bench', 'hot', scopes => ARRAY['read'])).token")
psql <<SQL
INSERT INTO api_keys.keys (id, owner_type, owner_id, token_hash, display_prefix, last4)
SELECT gen_random_uuid(), 'bench_filler', g::text, sha256(('filler' || g)::bytea), 'ak', '0000'
  FROM generate_series(2, $KEYS) g;
VACUUM ANALYZE;
CHECKPOINT;
SQL
bash scripts/cluster.sh stop "$DIR" >/dev/null

statement() { # variant → SQL, without the trailing semicolon
  case $1 in
    select1) echo "SELECT 1" ;;
    floor) echo "SELECT id, owner_type, owner_id, name, key_type, environment, scopes, metadata, expires_at, revoked_at FROM api_keys.keys WHERE token_hash = sha256('$token'::bytea)" ;;
    plpgsql) echo "SELECT * FROM bench.plpgsql_verify('$token', '{read}')" ;;
    verify | verify_fscan) echo "SELECT * FROM api_keys.api_key_verify('$token', '{read}')" ;;
    verify_some | verify_some_fscan) echo "SELECT valid, code, owner_id FROM api_keys.api_key_verify('$token', '{read}')" ;;
    verify_expr) echo "SELECT api_keys.api_key_verify('$token', '{read}')" ;;
    verify_cols) echo "SELECT (v).* FROM (SELECT api_keys.api_key_verify('$token', '{read}') v OFFSET 0) s" ;;
    definer_set) echo "SELECT * FROM bench.verify_definer_set('$token', '{read}')" ;;
    definer) echo "SELECT * FROM bench.verify_definer('$token', '{read}')" ;;
    *) die "unknown variant $1" ;;
  esac
}

# instructions variant n → total instructions of the backend's run
instructions() {
  local v=$1 n=$2 input=$WORK/$1.$2.in out=$WORK/$1.$2.callgrind
  {
    echo "SET api_keys.track_usage = off"
    [[ $v == *_fscan ]] && echo "SET api_keys.verify_custom_scan = off"
    echo "DO \$\$ BEGIN FOR i IN 1..$n LOOP PERFORM ${statement_of[$v]#SELECT }; END LOOP; END \$\$"
  } >"$input"
  as_postgres valgrind --tool=callgrind \
    --callgrind-out-file="$out" "$PG_BIN/postgres" --single -D "$DIR/data" bench \
    <"$input" >"$WORK/$v.$n.stdout" 2>"$WORK/$v.$n.valgrind" ||
    { cat "$WORK/$v.$n.valgrind" >&2; die "valgrind run of $v failed"; }
  if grep -q "ERROR:" "$WORK/$v.$n.stdout"; then
    grep -m3 "ERROR:" "$WORK/$v.$n.stdout" >&2
    die "variant $v raised in the single-user backend"
  fi
  awk '/^(summary|totals):/ { print $2; exit }' "$out"
}

declare -A statement_of
for v in "${VARIANTS[@]}"; do statement_of[$v]=$(statement "$v"); done

echo "api_keys instructions per call: callgrind, postgres --single, PL/pgSQL loop of PERFORM <statement>, $KEYS keys, (I($N2) - I($N1)) / $((N2 - N1))"
echo "machine: $(nproc) cores, $(uname -r), PostgreSQL $("$PG_BIN/postgres" --version | awk '{ print $3 }'), $(valgrind --version)"
declare -A PER
printf '\n%-12s %14s %10s\n' variant "instr/call" "/ floor"
for v in "${VARIANTS[@]}"; do
  a=$(instructions "$v" "$N1")
  b=$(instructions "$v" "$N2")
  PER[$v]=$(((b - a) / (N2 - N1)))
done
for v in "${VARIANTS[@]}"; do
  rel=-
  [[ -n ${PER[floor]:-} ]] && rel=$(awk -v a="${PER[$v]}" -v b="${PER[floor]}" 'BEGIN { printf "%.3f", a / b }')
  printf '%-12s %14d %10s\n' "$v" "${PER[$v]}" "$rel"
done
if [[ -n ${PER[floor]:-} && -n ${PER[verify]:-} ]]; then
  echo
  echo "as a throughput ratio (fewer instructions = more calls per second on the server):"
  for v in verify verify_fscan verify_expr verify_cols definer definer_set plpgsql; do
    [[ -n ${PER[$v]:-} ]] || continue
    awk -v v="$v" -v a="${PER[floor]}" -v b="${PER[$v]}" 'BEGIN { printf "  floor / %-12s %.3f\n", v, a / b }'
  done
fi

# self instructions by function of one run: "count<TAB>function"
by_function() {
  callgrind_annotate --threshold=100 --inclusive=no "$1" 2>/dev/null |
    awk '$1 ~ /^[0-9,]+$/ && NF >= 2 { n = $1; gsub(",", "", n); $1 = ""; sub(/^ +/, ""); sub(/^\( *[0-9.]+%\) +/, ""); sub(/ \[[^]]*\]$/, ""); print n "\t" $0 }'
}
# per_function variant → "instructions per execution<TAB>function" of the
# steady state: the difference of the two runs, function by function
per_function() {
  local v=$1
  by_function "$WORK/$v.$N1.callgrind" >"$WORK/$v.a"
  by_function "$WORK/$v.$N2.callgrind" >"$WORK/$v.b"
  awk -F '\t' -v n="$((N2 - N1))" '
    FNR == NR { a[$2] += $1; next }
    { b[$2] += $1 }
    END { for (f in b) { d = (b[f] - a[f]) / n; if ((d >= 1 || d <= -1) && f != "PROGRAM TOTALS") printf "%.0f\t%s\n", d, f } }' \
    "$WORK/$v.a" "$WORK/$v.b" | sort -t "$(printf '\t')" -k1,1rn >"$WORK/$v.per"
}
if [[ ${BENCH_PROFILE:-} == 1 ]]; then
  read -r -a profiled <<<"${BENCH_PROFILE_VARIANTS:-floor verify verify_fscan verify_expr}"
  for v in "${profiled[@]}"; do
    [[ -f $WORK/$v.$N2.callgrind ]] || continue
    per_function "$v"
    echo
    echo "== $v: instructions (self) per execution by function; top 25 of ${PER[$v]}"
    awk -F '\t' -v total="${PER[$v]}" 'NR <= 25 { printf "%10d %5.1f%%  %s\n", $1, 100 * $1 / total, $2 }' "$WORK/$v.per"
  done
  # BENCH_COMPARE="a:b …": where a costs more than b, function by function
  for pair in ${BENCH_COMPARE:-verify_fscan:verify verify:verify_expr verify_expr:floor}; do
    a=${pair%%:*} b=${pair#*:}
    [[ -f $WORK/$a.per && -f $WORK/$b.per ]] || continue
    echo
    echo "== $a - $b: $((PER[$a] - PER[$b])) instructions per execution; the largest differences by function"
    awk -F '\t' 'FNR == NR { b[$2] = $1; next } { a[$2] = $1 }
      END { for (f in a) d[f] = a[f] - b[f]; for (f in b) if (!(f in a)) d[f] = -b[f]
            for (f in d) if (d[f] >= 100 || d[f] <= -100) printf "%10d  %s\n", d[f], f }' \
      "$WORK/$b.per" "$WORK/$a.per" | sort -rn | awk 'NR <= 25'
  done
fi
