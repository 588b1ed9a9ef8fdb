#!/usr/bin/env bash
# Start the whole thing locally: a throwaway PostgreSQL 15 in ./.pgdata with
# the api_keys extension installed in database `api_keys`.
#
#   bash scripts/start.sh           (re-runnable: restarts with the latest build)
#   bash scripts/start.sh --fresh   (delete ./.pgdata first)
#
# Env: API_KEYS_PORT (default 25329).
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"

PORT=${API_KEYS_PORT:-25329}
PGDATA_DIR=$ROOT/.pgdata
fresh=0
case ${1:-} in
  --fresh) fresh=1 ;;
  "") ;;
  *) die "usage: $0 [--fresh]" ;;
esac

bash scripts/setup.sh

# Stop a running cluster before reinstalling: it has the old library loaded.
bash scripts/cluster.sh stop "$PGDATA_DIR"
if ((fresh)); then
  log "removing $PGDATA_DIR"
  as_root rm -rf "$PGDATA_DIR"
fi

bash scripts/install-extension.sh
bash scripts/cluster.sh start "$PGDATA_DIR" "$PORT" >/dev/null

URL="postgresql://postgres@127.0.0.1:$PORT/api_keys"
psql "postgresql://postgres@127.0.0.1:$PORT/postgres" -X -q -v ON_ERROR_STOP=1 <<'SQL'
SELECT 'CREATE DATABASE api_keys'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'api_keys') \gexec
\c api_keys
CREATE EXTENSION IF NOT EXISTS api_keys;
SQL

# --- Admin HTTP service --------------------------------------------------
# A later issue adds `api-keys-admin serve` (crate admin/); start it here,
# in the background against "$URL", and print its address below.
# --------------------------------------------------------------------------

cat <<MSG

PostgreSQL 15 with api_keys is running (data: .pgdata, log: .pgdata/log).

Connect:
  psql $URL

Example session:
  SELECT token FROM api_keys.api_key_issue('user', '42', name => 'ci', scopes => ARRAY['read']);
  SELECT * FROM api_keys.api_key_verify('<token>', ARRAY['read']);
  SELECT id, name, status, masked_token FROM api_keys.api_key_list('user', '42');
  SELECT api_keys.api_key_revoke('<id>');
  SELECT valid, code FROM api_keys.api_key_verify('<token>', ARRAY['read']);  -- now: revoked

Stop:
  bash scripts/cluster.sh stop .pgdata
MSG
