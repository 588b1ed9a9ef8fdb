#!/usr/bin/env bash
# Build the api_keys extension in release mode and install it into the system
# PostgreSQL 15 (/usr/lib/postgresql/15/lib, /usr/share/postgresql/15/extension).
# Assumes scripts/setup.sh has run. A cluster that preloads api_keys should be
# stopped first: overwriting a loaded library can crash the running server.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

args=(--release --pg-config "$PG_CONFIG")
[[ $EUID -eq 0 ]] || args+=(--sudo)   # system directories need root

log "cargo pgrx install ${args[*]}"
cd "$ROOT/extension"
cargo pgrx install "${args[@]}"
