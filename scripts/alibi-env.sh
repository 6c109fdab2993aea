#!/usr/bin/env bash
# Create .alibi-venv: aiops with the alibi-detect extra, in its own environment.
#
# Why a separate venv: alibi-detect 0.12/0.13 pins numpy<2 (and pandas<3, numba<0.60), while the default
# aiops environment runs numpy 2 / pandas 3. alibi's numpy/scipy detectors (KSDrift, CVMDrift,
# ChiSquareDrift, TabularDrift, CVMDriftOnline, FETDriftOnline) need nothing more; MMDDrift, MMDDriftOnline
# and LSDDDriftOnline run on alibi's PyTorch backend, so torch (CPU build) is installed here too.
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
# PyTorch for alibi's pytorch backend (alibi_mmd, alibi_mmd_online, alibi_lsdd_online). Exactly this pin: the
# machines (and CI) keep a CPU wheel of torch 2.13.0 on disk (/opt/wheels, ~190 MB) that pip takes for this
# pin; plain `torch` or a range would pull a CUDA build of several GB. It works beside alibi's numpy<2.
"$VENV/bin/python" -m pip install -q torch==2.13.0
"$VENV/bin/python" -c "import alibi_detect, numpy, torch; print('alibi-detect', alibi_detect.__version__, 'numpy', numpy.__version__, 'torch', torch.__version__)"
"$VENV/bin/python" -c "from alibi_detect.utils.frameworks import has_pytorch; assert has_pytorch, 'alibi-detect does not see torch'"
