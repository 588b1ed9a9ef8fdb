#!/usr/bin/env bash
# Start the whole thing locally: a throwaway PostgreSQL 15 in ./.pgdata with
# the api_keys extension installed in database `api_keys`, and the admin HTTP
# service (api-keys-admin serve) in front of it.
#
#   bash scripts/start.sh           (re-runnable: restarts with the latest build)
#   bash scripts/start.sh --fresh   (delete ./.pgdata first)
#   bash scripts/start.sh --stop    (stop the service and the cluster)
#
# Env: API_KEYS_PORT (PostgreSQL, default 25329), API_KEYS_LISTEN (the admin
# service, default 127.0.0.1:8080).
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"

PORT=${API_KEYS_PORT:-25329}
LISTEN=${API_KEYS_LISTEN:-127.0.0.1:8080}
PGDATA_DIR=$ROOT/.pgdata
ADMIN_DIR=$ROOT/.admin
ADMIN_BIN=$ROOT/target/release/api-keys-admin

stop_admin() {
  if [[ -f $ADMIN_DIR/pid ]]; then
    local pid
    pid=$(cat "$ADMIN_DIR/pid")
    if kill -0 "$pid" 2>/dev/null; then
      log "stopping the admin service (pid $pid)"
      kill -TERM "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$ADMIN_DIR/pid"
  fi
}

fresh=0
case ${1:-} in
  --fresh) fresh=1 ;;
  --stop)
    stop_admin
    bash scripts/cluster.sh stop "$PGDATA_DIR"
    exit 0
    ;;
  "") ;;
  *) die "usage: $0 [--fresh | --stop]" ;;
esac

bash scripts/setup.sh

# Stop a running cluster before reinstalling: it has the old library loaded.
stop_admin
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
# It connects as a LOGIN role granted api_keys_admin, never a superuser.
log "cargo build --release -p api-keys-admin"
cargo build --release --quiet -p api-keys-admin
psql "$URL" -X -q -v ON_ERROR_STOP=1 <<'SQL'
SELECT 'CREATE ROLE api_keys_service LOGIN'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'api_keys_service') \gexec
GRANT api_keys_admin TO api_keys_service;
SQL
SERVICE_URL="postgresql://api_keys_service@127.0.0.1:$PORT/api_keys"
admin_keys=$(psql "$URL" -X -tA -c "SELECT count(*) FROM api_keys.keys WHERE owner_type = 'api_keys_admin'")
TOKEN=""
if [[ $admin_keys == 0 ]]; then
  # first start: the plaintext is printed below, once, and kept nowhere
  TOKEN=$("$ADMIN_BIN" bootstrap --database-url "$SERVICE_URL")
fi
mkdir -p "$ADMIN_DIR"
nohup "$ADMIN_BIN" serve --database-url "$SERVICE_URL" --listen "$LISTEN" \
  >"$ADMIN_DIR/log" 2>&1 </dev/null &
echo $! >"$ADMIN_DIR/pid"
for _ in $(seq 100); do
  curl -fsS "http://$LISTEN/healthz" >/dev/null 2>&1 && break
  kill -0 "$(cat "$ADMIN_DIR/pid")" 2>/dev/null || die "the admin service exited; see $ADMIN_DIR/log"
  sleep 0.1
done
curl -fsS "http://$LISTEN/healthz" >/dev/null || die "the admin service does not answer on $LISTEN; see $ADMIN_DIR/log"
if [[ -n $TOKEN ]]; then
  ADMIN_TOKEN_LINE="Admin key (keys:read, keys:write, keys:verify), shown this once:
  export API_KEYS_ADMIN_TOKEN=$TOKEN"
else
  ADMIN_TOKEN_LINE="An admin key was issued and shown on the first start; for another one:
  DATABASE_URL=$SERVICE_URL target/release/api-keys-admin bootstrap
  and export API_KEYS_ADMIN_TOKEN=<that key>"
fi
# A ready sign-in link to the self-serve dashboard for the demo owner
# user/42 (single use, valid for an hour).
DASHBOARD_LINK=$("$ADMIN_BIN" dashboard-link --database-url "$SERVICE_URL" \
  --owner-type user --owner-id 42 --ttl-seconds 3600 --public-url "http://$LISTEN")
# --------------------------------------------------------------------------

cat <<MSG

PostgreSQL 15 with api_keys is running (data: .pgdata, log: .pgdata/log),
and the admin HTTP service on http://$LISTEN (log: .admin/log).

$ADMIN_TOKEN_LINE

Dashboard of the demo owner user/42 (open in a browser; the link works once,
for an hour; re-run this script or POST /v1/dashboard_sessions for another):
  $DASHBOARD_LINK

Try it:
  curl -s -H "Authorization: Bearer \$API_KEYS_ADMIN_TOKEN" -H 'content-type: application/json' \\
       -d '{"owner_type":"user","owner_id":"42","name":"ci","scopes":["read"]}' http://$LISTEN/v1/keys
  curl -s -H "Authorization: Bearer \$API_KEYS_ADMIN_TOKEN" 'http://$LISTEN/v1/keys?owner_type=user&owner_id=42'
  curl -s http://$LISTEN/openapi.json | head -c 300

Connect:
  psql $URL

Example session:
  SELECT token FROM api_keys.api_key_issue('user', '42', name => 'ci', scopes => ARRAY['read']);
  SELECT * FROM api_keys.api_key_verify('<token>', ARRAY['read']);
  SELECT id, name, status, masked_token FROM api_keys.api_key_list('user', '42');
  SELECT api_keys.api_key_revoke('<id>');
  SELECT valid, code FROM api_keys.api_key_verify('<token>', ARRAY['read']);  -- now: revoked

Stop:
  bash scripts/start.sh --stop
MSG
