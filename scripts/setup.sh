#!/usr/bin/env bash
# Idempotent cold-machine setup (Debian 12): PostgreSQL 15 + headers, clang,
# cargo-pgrx 0.18.1, and `cargo pgrx init` against the system PostgreSQL 15.
# Each step is skipped when it is already done, so a warm run takes seconds.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

APT_PACKAGES=(postgresql-15 postgresql-server-dev-15 libclang-dev clang sudo pgbouncer curl chromium chromium-driver)
PGRX_VERSION=0.18.1

# 1. Debian packages.
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if ! dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed'; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
else
  log "Debian packages present"
fi

# 2. cargo-pgrx, pinned (0.19 needs a newer Rust than this machine has).
command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust (rustup) first"
if cargo pgrx --version 2>/dev/null | grep -qF " $PGRX_VERSION"; then
  log "cargo-pgrx $PGRX_VERSION present"
else
  log "installing cargo-pgrx $PGRX_VERSION (about 10 minutes, once)"
  cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
fi

# 3. Point pgrx at the system PostgreSQL 15 (no pgrx-managed PostgreSQL build).
pgrx_config="${PGRX_HOME:-$HOME/.pgrx}/config.toml"
if [[ -f $pgrx_config ]] && grep -q '^pg15' "$pgrx_config"; then
  log "pgrx already initialised for pg15"
else
  log "cargo pgrx init --pg15 $PG_CONFIG"
  cargo pgrx init --pg15 "$PG_CONFIG"
fi

# 4. psycopg 3 for examples/postgrest/client.py (run by the integration tests).
# Debian's own python3 refuses pip installs (PEP 668, externally managed);
# then install into it anyway, as the tests run whichever python3 is on PATH.
if python3 -c 'import psycopg' 2>/dev/null; then
  log "psycopg present"
else
  log "installing psycopg[binary] (PyPI)"
  python3 -m pip install --quiet 'psycopg[binary]' ||
    python3 -m pip install --quiet --break-system-packages 'psycopg[binary]'
  python3 -c 'import psycopg' || die "psycopg is still not importable by $(command -v python3)"
fi

# 5. schemathesis (PyPI) for the admin service's OpenAPI test, in its own
# virtualenv so that no system Python is touched.
VENV=${API_KEYS_VENV:-/opt/api-keys-venv}
if [[ -x $VENV/bin/schemathesis ]] && "$VENV/bin/schemathesis" --version >/dev/null 2>&1; then
  log "schemathesis present ($VENV)"
else
  log "installing schemathesis into $VENV (PyPI)"
  as_root python3 -m venv "$VENV"
  as_root "$VENV/bin/pip" install --quiet schemathesis
  "$VENV/bin/schemathesis" --version >/dev/null || die "schemathesis did not install into $VENV"
fi
