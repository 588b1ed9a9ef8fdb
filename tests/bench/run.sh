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
#   3e verify_expr SELECT api_keys.api_key_verify(…) (one composite column), tracking off
#   3d definer_set the same C symbol declared in schema bench as SECURITY DEFINER with
#                 SET search_path (how verify was declared before SPEC §2's hot-path
#                 exception), FROM form, tracking off: verify / definer_set is the saving
#   3s definer    the same C symbol, SECURITY DEFINER without SET search_path, FROM
#                 form, tracking off: definer / definer_set isolates SET's cost,
#                 verify / definer SECURITY DEFINER's
#   4 tracked     SELECT * FROM api_keys.api_key_verify(…), usage tracking on (shared memory)
#   5 naive       PL/pgSQL verify + UPDATE last_used_at and a counter on every verify
#   6 issue       api_keys.api_key_issue throughput
#
# Env: BENCH_SECONDS (10), BENCH_ROUNDS (5), BENCH_SIZES ("10000 1000000"),
#      BENCH_PORT (25460), BENCH_TOKENS (20 hot keys), BENCH_SKIP_INSTALL=1.
set -euo pipefail
# shellcheck source=../../scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
cd "$ROOT"

SECS=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-5}
SIZES=${BENCH_SIZES:-"10000 1000000"}
PORT=${BENCH_PORT:-25460}
NTOKENS=${BENCH_TOKENS:-20}
VARIANTS=(select1 floor plpgsql verify verify_expr definer_set definer tracked naive issue)

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
psql <<'SQL'
CREATE EXTENSION api_keys;
CREATE SCHEMA bench;
CREATE TABLE bench.tokens (i int PRIMARY KEY, token text NOT NULL);

-- What users write today: hash, look up, check revoked/expired/scopes.
CREATE FUNCTION bench.plpgsql_verify(p_token text, p_required text[] DEFAULT '{}')
RETURNS api_keys.verification LANGUAGE plpgsql STABLE AS $$
DECLARE
    k api_keys.keys;
    v api_keys.verification;
BEGIN
    v.valid := false;
    SELECT * INTO k FROM api_keys.keys WHERE token_hash = sha256(convert_to(p_token, 'UTF8'));
    IF NOT FOUND THEN
        v.code := 'not_found';
    ELSIF k.revoked_at IS NOT NULL THEN
        v.code := 'revoked';
    ELSIF k.expires_at <= now() THEN
        v.code := 'expired';
    ELSE
        v.code := CASE WHEN k.scopes @> p_required THEN 'valid' ELSE 'insufficient_scope' END;
        v.valid := v.code = 'valid';
        v.key_id := k.id; v.owner_type := k.owner_type; v.owner_id := k.owner_id; v.name := k.name;
        v.key_type := k.key_type; v.environment := k.environment; v.scopes := k.scopes;
        v.metadata := k.metadata; v.expires_at := k.expires_at;
    END IF;
    RETURN v;
END
$$;

-- api_key_verify's C symbol declared as before SPEC §2's hot-path exception
-- (SECURITY DEFINER + SET search_path), and with SECURITY DEFINER alone: the
-- fixed cost of each, measured in the same run as the shipped declaration.
CREATE FUNCTION bench.verify_definer_set(token text, required_scopes text[] DEFAULT '{}', environment text DEFAULT NULL)
RETURNS api_keys.verification LANGUAGE c VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp
AS '$libdir/api_keys', 'api_key_verify_c';
CREATE FUNCTION bench.verify_definer(token text, required_scopes text[] DEFAULT '{}', environment text DEFAULT NULL)
RETURNS api_keys.verification LANGUAGE c VOLATILE
SECURITY DEFINER
AS '$libdir/api_keys', 'api_key_verify_c';

-- The same, plus a write per verify: the tracker api_keys avoids.
CREATE FUNCTION bench.naive_verify(p_token text, p_required text[] DEFAULT '{}')
RETURNS api_keys.verification LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v api_keys.verification := bench.plpgsql_verify(p_token, p_required);
BEGIN
    IF v.valid THEN
        UPDATE api_keys.keys SET last_used_at = now(), requests_count = requests_count + 1
         WHERE id = v.key_id;
    END IF;
    RETURN v;
END
$$;
SQL
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
    echo "SELECT api_keys.api_key_verify('$token', '{read}');" >"$WORK/verify_expr.$i.sql"
    echo "SELECT * FROM bench.verify_definer_set('$token', '{read}');" >"$WORK/definer_set.$i.sql"
    echo "SELECT * FROM bench.verify_definer('$token', '{read}');" >"$WORK/definer.$i.sql"
    echo "SELECT * FROM bench.naive_verify('$token', '{read}');" >"$WORK/naive.$i.sql"
  done
  echo "SELECT 1;" >"$WORK/select1.1.sql"
  printf '%s\n' '\set owner random(1, 1000000)' \
    "SELECT id FROM api_keys.api_key_issue('bench_issue', :owner::text);" >"$WORK/issue.1.sql"
}

run_variant() { # variant → tps
  local v=$1 files=() f opts=""
  for f in "$WORK/$v".*.sql; do files+=(-f "$f"); done
  [[ $v == verify || $v == verify_expr || $v == definer_set || $v == definer ]] &&
    opts="-c api_keys.track_usage=off"
  PGOPTIONS=$opts pgbench -n -M prepared -c 2 -j 2 -T "$SECS" "${files[@]}" 2>"$WORK/pgbench.err" |
    awk '/^tps = / { print $3 }' || { cat "$WORK/pgbench.err" >&2; return 1; }
}

median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

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
echo "api_keys verify benchmark: pgbench -M prepared, 2 clients, ${SECS}s per run, $ROUNDS rounds (median), $NTOKENS hot keys"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -r), PostgreSQL $(pg_config --version | awk '{ print $2 }')"
for size in $SIZES; do
  fill_to "$size"
  for ((r = 0; r < ROUNDS; r++)); do
    for ((k = 0; k < ${#VARIANTS[@]}; k++)); do
      v=${VARIANTS[$(((k + r) % ${#VARIANTS[@]}))]}
      t=$(run_variant "$v")
      TPS[$size.$v]+="$t "
      [[ $v == issue ]] && psql -c "DELETE FROM api_keys.keys WHERE owner_type = 'bench_issue'"
    done
  done
  fill_to "$size" >/dev/null
done

printf '\n%-10s %-11s %12s %s\n' keys variant "median tps" "(all rounds)"
declare -A MED
for size in $SIZES; do
  for v in "${VARIANTS[@]}"; do
    MED[$size.$v]=$(tr ' ' '\n' <<<"${TPS[$size.$v]}" | grep . | median)
    printf '%-10s %-11s %12.0f (%s)\n' "$size" "$v" "${MED[$size.$v]}" "${TPS[$size.$v]% }"
  done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
check() { awk -v r="$1" -v t="$2" 'BEGIN { print (r >= t) ? "ok" : "MISSED" }'; }
echo
printf '%-46s %8s %8s %s\n' ratio value target ""
for size in $SIZES; do
  r=$(ratio "${MED[$size.verify]}" "${MED[$size.floor]}")
  printf '%-46s %8s %8s %s\n' "(3) verify / (1) floor @ $size" "$r" ">=0.9" "$(check "$r" 0.9)"
  r=$(ratio "${MED[$size.verify_expr]}" "${MED[$size.floor]}")
  printf '%-46s %8s %8s %s\n' "(3e) verify_expr / (1) floor @ $size" "$r" ">=0.9" "$(check "$r" 0.9)"
  r=$(ratio "${MED[$size.tracked]}" "${MED[$size.verify]}")
  printf '%-46s %8s %8s %s\n' "(4) tracked / (3) verify @ $size" "$r" ">=0.95" "$(check "$r" 0.95)"
  r=$(ratio "${MED[$size.verify]}" "${MED[$size.plpgsql]}")
  printf '%-46s %8s %8s %s\n' "(3) verify / (2) plpgsql @ $size" "$r" ">1" "$(check "$r" 1.0001)"
  r=$(ratio "${MED[$size.naive]}" "${MED[$size.tracked]}")
  printf '%-46s %8s %8s %s\n' "(5) naive / (4) tracked @ $size" "$r" "-" ""
  r=$(ratio "${MED[$size.verify]}" "${MED[$size.definer_set]}")
  printf '%-46s %8s %8s %s\n' "(3) verify / (3d) definer_set @ $size" "$r" "-" ""
  r=$(ratio "${MED[$size.definer]}" "${MED[$size.definer_set]}")
  printf '%-46s %8s %8s %s\n' "(3s) definer / (3d) definer_set @ $size" "$r" "-" ""
  r=$(ratio "${MED[$size.verify]}" "${MED[$size.definer]}")
  printf '%-46s %8s %8s %s\n' "(3) verify / (3s) definer @ $size" "$r" "-" ""
  r=$(ratio "${MED[$size.floor]}" "${MED[$size.select1]}")
  printf '%-46s %8s %8s %s\n' "(1) floor / (0) select1 @ $size" "$r" "-" ""
  r=$(ratio "${MED[$size.verify]}" "${MED[$size.select1]}")
  printf '%-46s %8s %8s %s\n' "(3) verify / (0) select1 @ $size" "$r" "-" ""
done
read -r small large _ <<<"$SIZES"
if [[ -n ${large:-} ]]; then
  r=$(ratio "${MED[$large.verify]}" "${MED[$small.verify]}")
  printf '%-46s %8s %8s %s\n' "(3) @ $large / (3) @ $small" "$r" ">=0.9" "$(check "$r" 0.9)"
fi
