#!/usr/bin/env bash
# The project's test command (the README's and CI's): install the test dependencies, lint, type-check, run
# the test suite against real servers, then the two stages that need their own environments:
#   - alibi-detect (BSL-licensed optional extra; pins numpy<2): .alibi-venv, tests marked `alibi`
#   - a real Apache Airflow for the airflow_dag remediation: .airflow-venv, tests marked `airflow`
# Every stage runs even when an earlier one failed (a red lint must not hide a red Airflow stage), then a
# table says what each stage did; the exit status is non-zero when any stage failed.
#
# Extra arguments go to the main pytest run and skip the two extra stages, e.g.
#   bash scripts/test.sh -k http -x
# AIOPS_SKIP_EXTRA_STAGES=1 skips them too; AIOPS_TEST_STAGES="main alibi" picks the pytest stages by name.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "$#" -gt 0 ] || [ "${AIOPS_SKIP_EXTRA_STAGES:-0}" = "1" ]; then
  default_stages="main"
else
  default_stages="main alibi airflow"
fi
read -r -a pytest_stages <<<"${AIOPS_TEST_STAGES:-$default_stages}"

reports="$(mktemp -d)"
trap 'rm -rf "$reports"' EXIT
summary=()  # one "stage<TAB>passed<TAB>failed<TAB>seconds<TAB>status" line per stage
failed_any=0

# junit_counts FILE -> "passed<TAB>failed" from pytest's JUnit XML (failures and errors both count as failed)
junit_counts() {
  python3 - "$1" <<'PY'
import sys
import xml.etree.ElementTree as ET

try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError):
    print("-\t-")
    raise SystemExit
suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
total = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
print(f"{total - bad - skipped}\t{bad}")
PY
}

# stage NAME KIND COMMAND... : run one stage, never stop the script, record its row in the summary.
# KIND is "pytest" (the command gets --junitxml; exit 5 = no tests collected) or "step" (lint, installs).
stage() {
  local name=$1 kind=$2
  shift 2
  echo "== $name" >&2
  local start=$SECONDS rc status counts="-	-"
  if [ "$kind" = pytest ]; then
    "$@" --junitxml="$reports/$name.xml"
    rc=$?
    counts="$(junit_counts "$reports/$name.xml")"
  else
    "$@"
    rc=$?
  fi
  case "$rc" in
    0) status=ok ;;
    # pytest's "no tests collected": fine for a subset chosen on the command line, a failure for a full run
    # (a stage that collects nothing is a broken stage, not a green one)
    5) if [ "$name" = main ] && [ "$SUBSET" = 1 ]; then status="no tests selected"; rc=0
       else status="FAILED (no tests collected)"; fi ;;
    *) status="FAILED (exit $rc)" ;;
  esac
  [ "$rc" -eq 0 ] || failed_any=1
  summary+=("$name	$counts	$((SECONDS - start))	$status")
}

SUBSET=0
[ "$#" -gt 0 ] && SUBSET=1

stage setup step bash scripts/install-test-deps.sh
stage ruff step .venv/bin/ruff check .
stage mypy step .venv/bin/mypy
for name in "${pytest_stages[@]}"; do
  case "$name" in
    main)
      # --durations=30: every run's log says where the time went (the stage has a budget)
      stage main pytest .venv/bin/pytest -m "not alibi and not airflow" -q --durations=30 "$@" ;;
    alibi)
      # the environment is part of the stage: when it cannot be built, the stage fails (never skips)
      stage alibi-env step bash scripts/alibi-env.sh
      stage alibi pytest .alibi-venv/bin/pytest -m alibi -q -p no:cacheprovider tests/integration/test_alibi_backend.py ;;
    airflow)
      stage airflow-env step bash scripts/airflow-env.sh
      stage airflow pytest .venv/bin/pytest -m airflow -q -p no:cacheprovider tests/integration/test_airflow_standalone.py ;;
    *)
      echo "unknown stage in AIOPS_TEST_STAGES: $name (known: main alibi airflow)" >&2
      summary+=("$name	-	-	0	FAILED (unknown stage)")
      failed_any=1 ;;
  esac
done

{
  echo
  printf '%-12s %8s %8s %8s  %s\n' stage passed failed time status
  for row in "${summary[@]}"; do
    IFS=$'\t' read -r name passed failed seconds status <<<"$row"
    printf '%-12s %8s %8s %7ss  %s\n' "$name" "$passed" "$failed" "$seconds" "$status"
  done
  if [ "$failed_any" -eq 0 ]; then echo "all stages passed"; else echo "FAILED: see the stages above"; fi
} >&2
exit "$failed_any"
