# Shared helpers for the scripts in this directory. Source it, don't run it.
# shellcheck shell=bash

# Repository root (this file lives in <root>/scripts/).
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export ROOT

# PostgreSQL 15 as packaged by Debian.
PG_CONFIG=/usr/bin/pg_config
PKGLIBDIR=/usr/lib/postgresql/15/lib
EXTDIR=/usr/share/postgresql/15/extension
PG_BIN=${API_KEYS_PG_BIN:-/usr/lib/postgresql/15/bin}
# API_KEYS_PG_ROOT=/some/dir: use a private, relocated copy of Debian's
# PostgreSQL 15 under that directory instead of the system one, so that several
# checkouts can build, install and test side by side without overwriting each
# other's api_keys.so (PostgreSQL finds lib/ and share/ relative to its binary).
if [[ -n ${API_KEYS_PG_ROOT:-} ]]; then
  PG_BIN=$API_KEYS_PG_ROOT/usr/lib/postgresql/15/bin
  PKGLIBDIR=$API_KEYS_PG_ROOT/usr/lib/postgresql/15/lib
  EXTDIR=$API_KEYS_PG_ROOT/usr/share/postgresql/15/extension
fi
export PG_BIN PG_CONFIG PKGLIBDIR EXTDIR

# Make the private copy of API_KEYS_PG_ROOT when it is missing.
ensure_pg_root() {
  [[ -n ${API_KEYS_PG_ROOT:-} ]] || return 0
  [[ -x $PG_BIN/postgres ]] && return 0
  mkdir -p "$API_KEYS_PG_ROOT/usr/lib/postgresql" "$API_KEYS_PG_ROOT/usr/share/postgresql"
  cp -a /usr/lib/postgresql/15 "$API_KEYS_PG_ROOT/usr/lib/postgresql/"
  cp -a /usr/share/postgresql/15 "$API_KEYS_PG_ROOT/usr/share/postgresql/"
  chmod -R a+rX "$API_KEYS_PG_ROOT"
}

# pgrx reads $USER and panics when it is unset (as it is under CI).
export USER=${USER:-$(id -un)}
export HOME=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}

# runuser, initdb's helpers and friends live in sbin, which a minimal PATH
# (cron, env -i, some CI runners) lacks.
case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/sbin:/sbin" ;; esac

# Cargo may be installed by rustup without being on PATH yet.
if ! command -v cargo >/dev/null 2>&1 && [[ -f "$HOME/.cargo/env" ]]; then
  # shellcheck source=/dev/null
  source "$HOME/.cargo/env"
fi

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Run a command as root (directly when we are root, else via sudo).
as_root() {
  if [[ $EUID -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# Run a command as the `postgres` OS user: PostgreSQL refuses to run as root.
# Runs from / so the postgres user never trips over an unreadable cwd.
as_postgres() {
  (
    cd /
    if [[ $EUID -eq 0 ]]; then
      runuser -u postgres -- "$@"
    elif [[ $(id -un) == postgres ]]; then
      "$@"
    else
      sudo -u postgres -- "$@"
    fi
  )
}
