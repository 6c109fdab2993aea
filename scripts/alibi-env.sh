#!/usr/bin/env bash
# Create .alibi-venv: aiops with the alibi-detect extra, in its own environment.
#
# Why a separate venv: alibi-detect 0.12/0.13 pins numpy<2 (and pandas<3, numba<0.60), while the default
# aiops environment runs numpy 2 / pandas 3. Only the numpy/scipy detectors of alibi-detect are used
# (KSDrift, CVMDrift, ChiSquareDrift, TabularDrift); no torch or tensorflow is installed, so alibi's
# MMDDrift (which needs one of them) is not available here.
#
# Licence: alibi-detect >= 0.11.5 is under the Business Source License 1.1 (not open source for production
# use without a licence from Seldon); see docs/drift.md.
#
# Usage:  scripts/alibi-env.sh            # creates/updates .alibi-venv next to pyproject.toml
#         .alibi-venv/bin/pytest -m alibi tests/integration/test_alibi_backend.py
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
VENV="${ALIBI_VENV:-.alibi-venv}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e '.[alibi,test]'
"$VENV/bin/python" -c "import alibi_detect, numpy; print('alibi-detect', alibi_detect.__version__, 'numpy', numpy.__version__)"
