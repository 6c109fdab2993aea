#!/usr/bin/env bash
# Create .airflow-venv: a real Apache Airflow (3.x, SQLite, loopback) in its own environment, used by
# tests/integration/test_airflow_standalone.py to exercise the airflow_dag remediation against
# `airflow standalone`.
#
# Why a separate venv: Airflow pins many packages (fastapi, pydantic, sqlalchemy, opentelemetry, ...) and
# is far too heavy for the daemon's own environment; aiops only talks to it over HTTP.
#
# Usage:  scripts/airflow-env.sh                 # creates/updates .airflow-venv next to pyproject.toml
#         .venv/bin/pytest -m airflow tests/integration/test_airflow_standalone.py
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
VENV="${AIRFLOW_VENV:-.airflow-venv}"
VERSION="${AIRFLOW_VERSION:-3.3.2}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q "apache-airflow==${VERSION}"
"$VENV/bin/airflow" version
