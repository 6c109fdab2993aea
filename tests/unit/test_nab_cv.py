"""The NAB cross-validation benchmark re-applies each detector's debounce to scores computed once with the
debounce off; that is only valid if the two give the detector's own scores exactly."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from aiops.commands.detect import build_detector, score_series

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "nab_cv.py"


def _nab_cv() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nab_cv", _PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["nab_cv"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["default", "knn", "bocpd"])
def test_debounce_reapplied_offline_equals_the_detector(name: str) -> None:
    nab_cv = _nab_cv()
    rng = np.random.default_rng(3)
    n = 1500
    t = np.arange(n) * 300.0
    x = 10 + np.sin(np.arange(n) / 20) + 0.2 * rng.standard_normal(n)
    x[700:705] += 6.0  # one event, so the debounce has something to do
    x[1100] -= 5.0
    deb = nab_cv.Debounce(rest=50, alert_level=0.5, cooldown=300, cooldown_level=0.8)
    raw, _ = score_series(build_detector(name, {"rest": 0, "cooldown": 0}), t, x)
    own, _ = score_series(build_detector(name, deb.params()), t, x)
    assert own.max() >= 0.5  # the test would be vacuous without an alert
    np.testing.assert_array_equal(nab_cv.apply_debounce(raw, deb), own)
