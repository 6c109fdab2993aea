#!/usr/bin/env bash
# The project's test command (the README's and CI's): install the test dependencies, lint, type-check, run
# the test suite against real servers, then the two stages that need their own environments:
#   - alibi-detect (BSL-licensed optional extra; pins numpy<2): .alibi-venv, tests marked `alibi`
#   - a real Apache Airflow for the airflow_dag remediation: .airflow-venv, tests marked `airflow`
# Extra arguments go to the main pytest run and skip the two extra stages, e.g.
#   bash scripts/test.sh -k http -x
# AIOPS_SKIP_EXTRA_STAGES=1 skips them too.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-test-deps.sh

echo "== ruff" >&2
.venv/bin/ruff check .
echo "== mypy" >&2
.venv/bin/mypy
echo "== pytest" >&2
.venv/bin/pytest -m "not alibi and not airflow" -q "$@"

if [ "$#" -gt 0 ] || [ "${AIOPS_SKIP_EXTRA_STAGES:-0}" = "1" ]; then
  exit 0
fi

echo "== pytest: alibi-detect backend (own environment)" >&2
bash scripts/alibi-env.sh
.alibi-venv/bin/pytest -m alibi -q -p no:cacheprovider tests/integration/test_alibi_backend.py

echo "== pytest: real Airflow (own environment)" >&2
bash scripts/airflow-env.sh
.venv/bin/pytest -m airflow -q -p no:cacheprovider tests/integration/test_airflow_standalone.py
