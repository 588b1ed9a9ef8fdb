#!/usr/bin/env bash
# Build the api_keys extension in release mode and install it into the system
# PostgreSQL 15 (/usr/lib/postgresql/15/lib, /usr/share/postgresql/15/extension).
# Assumes scripts/setup.sh has run. A cluster that preloads api_keys should be
# stopped first: overwriting a loaded library can crash the running server.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

cd "$ROOT/extension"
if [[ -n ${API_KEYS_PG_ROOT:-} ]]; then
  # a private copy (see common.sh): package into it instead of /usr
  ensure_pg_root
  log "cargo pgrx package --pg-config $PG_CONFIG --out-dir $API_KEYS_PG_ROOT"
  cargo pgrx package --pg-config "$PG_CONFIG" --out-dir "$API_KEYS_PG_ROOT"
  exit 0
fi

args=(--release --pg-config "$PG_CONFIG")
[[ $EUID -eq 0 ]] || args+=(--sudo)   # system directories need root

log "cargo pgrx install ${args[*]}"
cargo pgrx install "${args[@]}"
