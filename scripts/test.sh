#!/usr/bin/env bash
# The project's test command (the README's and CI's): install the test dependencies, lint, type-check,
# then run the test suite against real servers. Extra arguments go to pytest, e.g.
#   bash scripts/test.sh -k http -x
# Tests marked `alibi` / `airflow` need their own environments (scripts/alibi-env.sh, scripts/airflow-env.sh);
# .ci/run runs them as separate stages after this one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-test-deps.sh

echo "== ruff" >&2
.venv/bin/ruff check .
echo "== mypy" >&2
.venv/bin/mypy
echo "== pytest" >&2
.venv/bin/pytest -m "not alibi and not airflow" -q "$@"
