#!/usr/bin/env bash
# Install what the test suite needs, idempotently: Prometheus, promtool, Alertmanager and amtool (Debian
# packages), PostgreSQL 15 server binaries, and the project's .venv with the `test` extra.
#
# Why a script and not a README paragraph: the tests run against real servers and fail (never skip) when
# one is missing, so a fresh machine, a developer's or CI's, must be able to get all of them with one
# command. Safe to run again: every step checks before it acts.
#
# Usage: bash scripts/install-test-deps.sh      (PYTHON=python3.12 to choose the interpreter for a new .venv)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[install-test-deps] %s\n' "$*" >&2; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  fi
fi

APT_UPDATED=0
POLICY_RC=/usr/sbin/policy-rc.d
POLICY_RC_OURS=0

cleanup() {
  if [ "$POLICY_RC_OURS" -eq 1 ]; then
    "${SUDO[@]}" rm -f "$POLICY_RC" || true
  fi
}
trap cleanup EXIT

apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    log "apt-get not available: install these yourself: $*"
    exit 1
  fi
  if [ "$(id -u)" -ne 0 ] && [ "${#SUDO[@]}" -eq 0 ]; then
    log "need root (or sudo) to install: $*"
    exit 1
  fi
  # Keep packaged services (prometheus on :9090, a postgres cluster on :5432) from starting during the
  # install: the tests start their own servers on free ports.
  if [ ! -e "$POLICY_RC" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY_RC" >/dev/null
    "${SUDO[@]}" chmod 755 "$POLICY_RC"
    POLICY_RC_OURS=1
  fi
  if [ "$APT_UPDATED" -eq 0 ]; then
    log "apt-get update"
    "${SUDO[@]}" apt-get update -qq
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

stop_service() {
  # A packaged service may have started anyway (no policy-rc.d honoured, or installed earlier).
  local name=$1
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    "${SUDO[@]}" systemctl disable --now "$name" >/dev/null 2>&1 || true
  elif command -v service >/dev/null 2>&1; then
    "${SUDO[@]}" service "$name" stop >/dev/null 2>&1 || true
  fi
}

# -- Prometheus, promtool, Alertmanager, amtool -------------------------------------------------------------
missing=()
for bin in prometheus promtool prometheus-alertmanager amtool; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "missing: ${missing[*]}"
  apt_install prometheus prometheus-alertmanager
fi
for svc in prometheus prometheus-alertmanager; do
  stop_service "$svc"
done

# -- systemd-analyze (verifies deploy/systemd/aiops.service) -----------------------------------------------
command -v systemd-analyze >/dev/null 2>&1 || apt_install systemd

# -- a C compiler: `aiops warm-cache` builds the compiled detectors ahead of time (numba.pycc), and
#    tests/e2e/test_footprint.py checks the daemon that loads that build ---------------------------------------
command -v cc >/dev/null 2>&1 && [ -e /usr/include/stdio.h ] || apt_install gcc libc6-dev

# -- headless Chromium (tests/e2e/test_demo.py opens the demo's HTML report; tests/e2e/test_console.py drives the
#    web console with Playwright pointed at this binary: `playwright install` is never needed) ----------------
command -v chromium >/dev/null 2>&1 || apt_install chromium

# -- PostgreSQL server binaries (initdb, pg_ctl) ------------------------------------------------------------
if [ ! -x /usr/lib/postgresql/15/bin/initdb ] || [ ! -x /usr/lib/postgresql/15/bin/pg_ctl ]; then
  apt_install postgresql-15 || apt_install postgresql  # a release without 15: the fixture takes the newest
  stop_service postgresql
fi
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 && ! command -v pg_ctl >/dev/null 2>&1; then
  log "PostgreSQL server binaries still not found after install"
  exit 1
fi
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
  log "running as root but there is no 'postgres' user for the throwaway test clusters"
  exit 1
fi

# -- Python environment ----------------------------------------------------------------------------------------
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    log "$PY is older than Python 3.11; set PYTHON to a 3.11+ interpreter"
    exit 1
  fi
  log "creating .venv with $("$PY" --version 2>&1)"
  if ! "$PY" -m venv .venv; then
    rm -rf .venv
    apt_install python3-venv
    "$PY" -m venv .venv
  fi
fi

# Reinstall only when the dependency list (or the checkout's location, which an editable install records)
# changed, so that running the tests twice costs no network round-trips.
stamp=.venv/.aiops-test-deps
want="$( (pwd; cat pyproject.toml) | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ] || ! .venv/bin/python -c 'import aiops' >/dev/null 2>&1; then
  log "pip install -e '.[test]'"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
  printf '%s\n' "$want" >"$stamp"
fi
log "ok"
