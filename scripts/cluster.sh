#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster, run as the `postgres` OS user.
#
#   cluster.sh start DIR PORT   create (if needed) and start; prints the URL
#   cluster.sh stop DIR         fast shutdown; no-op when not running
#
# Layout: DIR/data (PGDATA), DIR/log (server log), DIR is the unix-socket dir.
# Listens on 127.0.0.1:PORT with trust auth (local use only), preloads the
# api_keys library (set API_KEYS_NO_PRELOAD=1 to skip, e.g. before the
# extension is installed) and allows streaming replication from 127.0.0.1.
# Only the connection string goes to stdout, so URL=$(cluster.sh start ...) works.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() { die "usage: $0 start DIR PORT | $0 stop DIR"; }

pg_ctl() { as_postgres "$PG_BIN/pg_ctl" "$@"; }

has_data() { as_postgres test -f "$1/PG_VERSION"; }
is_running() { pg_ctl status -D "$1" >/dev/null 2>&1; }

# Settings rewritten on every start (so PORT and preload can change between
# runs); postgresql.conf includes this file.
write_settings() {
  local dir=$1 port=$2 preload="'api_keys'"
  [[ ${API_KEYS_NO_PRELOAD:-} == 1 ]] && preload="''"
  as_postgres tee "$dir/data/api_keys_cluster.conf" >/dev/null <<CONF
# Written by scripts/cluster.sh on every start; edits are overwritten.
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
shared_preload_libraries = $preload
max_connections = 200
wal_level = replica
max_wal_senders = 5
CONF
}

start() {
  local dir port=$2 data
  dir=$(realpath -m "$1")
  data=$dir/data
  [[ $port =~ ^[0-9]+$ ]] || die "PORT must be a number, got '$port'"

  as_root install -d -o postgres -g postgres -m 0700 "$dir"
  as_postgres test -w "$dir" ||
    die "the postgres user cannot write $dir (is a parent directory private?)"

  if ! has_data "$data"; then
    log "initdb $data"
    as_postgres "$PG_BIN/initdb" -D "$data" --auth=trust -U postgres \
      --encoding=UTF8 --locale=C --no-instructions >&2
    echo "include 'api_keys_cluster.conf'" | as_postgres tee -a "$data/postgresql.conf" >/dev/null
  fi
  local hba='host replication all 127.0.0.1/32 trust'
  if ! as_postgres grep -qxF "$hba" "$data/pg_hba.conf"; then
    echo "$hba" | as_postgres tee -a "$data/pg_hba.conf" >/dev/null
  fi

  if is_running "$data"; then
    local running_port
    running_port=$(as_postgres sed -n 4p "$data/postmaster.pid")
    log "already running in $dir (port $running_port)"
    [[ $running_port == "$port" ]] ||
      log "warning: running on port $running_port, not $port; stop it to change the port"
    port=$running_port
  else
    write_settings "$dir" "$port"
    log "starting PostgreSQL on 127.0.0.1:$port (log: $dir/log)"
    if ! pg_ctl start -D "$data" -l "$dir/log" -w -t 60 >&2; then
      as_postgres tail -n 30 "$dir/log" >&2 || true
      die "PostgreSQL failed to start (see $dir/log)"
    fi
  fi
  echo "postgresql://postgres@127.0.0.1:$port/postgres"
}

stop() {
  local data
  data=$(realpath -m "$1")/data
  if has_data "$data" && is_running "$data"; then
    log "stopping PostgreSQL in $data"
    pg_ctl stop -D "$data" -m fast -w >&2
  else
    log "not running: $data"
  fi
}

case ${1:-} in
  start) (($# == 3)) || usage; start "$2" "$3" ;;
  stop) (($# == 2)) || usage; stop "$2" ;;
  *) usage ;;
esac
