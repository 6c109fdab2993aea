"""The alibi-detect backend, run for real (needs the extra: scripts/alibi-env.sh, then
``.alibi-venv/bin/pytest -m alibi tests/integration/test_alibi_backend.py``).

Deliberately *fails* (never skips) when alibi-detect cannot be imported: CI runs this module in the
environment that has the extra, and a silently skipped backend test would hide a broken install.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aiops import plugins
from aiops.errors import DetectorError

pytestmark = pytest.mark.alibi

CASES = Path(__file__).resolve().parents[3] / "shared" / "data" / "drift"
NAMES = ["alibi_ks", "alibi_tabular", "alibi_cvm", "alibi_chisquare"]


def test_alibi_detect_is_importable() -> None:
    import alibi_detect  # noqa: F401  (an ImportError here is the failure we want CI to report)


def _synthetic() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)

    def table(n: int, moved: bool) -> pd.DataFrame:
        weights = [0.1, 0.1, 0.2, 0.3, 0.3] if moved else [0.3, 0.3, 0.2, 0.1, 0.1]
        return pd.DataFrame(
            {
                "x": np.round(rng.normal(1.0 if moved else 0.0, 1.0, n), 1),
                "z": rng.normal(size=n),
                "y": rng.choice(5, n, p=weights).astype(float),
                "colour": rng.choice(["red", "green"], n),
            }
        )

    return table(2000, False), table(500, False), table(500, True)


# CvM's and KS's asymptotic p-values assume continuous data, so they get the (nearly) continuous columns;
# chi-square gets the discrete ones; TabularDrift picks per column itself.
CASE_PARAMS = {
    "alibi_ks": ({"columns": ["x", "z"]}, "x"),
    "alibi_cvm": ({"columns": ["x", "z"]}, "x"),
    "alibi_tabular": ({}, "x"),
    "alibi_chisquare": ({"columns": ["y", "colour"]}, "y"),
}


@pytest.mark.parametrize("name", NAMES)
def test_alibi_detector_clean_and_drifted(name: str) -> None:
    ref, clean, moved = _synthetic()
    params, column = CASE_PARAMS[name]
    det = plugins.build(plugins.DETECTORS, name, params)
    det.fit(ref)
    assert not det.test(clean).drift
    res = det.test(moved)
    assert res.drift
    assert column in res.drifted_columns
    assert res.to_dict()["columns"][column]["p_value"] < 0.01


@pytest.mark.parametrize("name", ["alibi_ks", "alibi_tabular"])
def test_alibi_on_a_shared_case(name: str) -> None:
    assert CASES.exists(), f"the shared drift cases must sit next to the repository: {CASES}"
    ref = pd.read_csv(CASES / "wine__reference.csv")
    stream = pd.read_csv(CASES / "wine__mean_shift_1sd.csv")
    det = plugins.build(plugins.DETECTORS, name, {}).fit(ref)
    assert det.test(stream.iloc[5500:6000]).drift  # after the onset at row 3000
    assert "proanthocyanins" in det.test(stream.iloc[5500:6000]).drifted_columns


def test_alibi_mmd_needs_a_backend() -> None:
    ref, _, moved = _synthetic()
    det = plugins.build(plugins.DETECTORS, "alibi_mmd", {"columns": ["x", "y"]})
    if importlib.util.find_spec("torch") is None:
        with pytest.raises(DetectorError, match="backend"):
            det.fit(ref)
    else:
        det.fit(ref)
        assert det.test(moved).drift
