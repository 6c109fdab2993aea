"""Regenerate the drift case the alibi stage reads (tests/integration/test_alibi_backend.py).

The case has the format of the project's public drift cases (a reference table, a stream with one known
shift injected from its onset row on, and ``cases.json`` describing it), but is small and built from
scikit-learn's bundled wine table, so the test suite needs nothing outside the repository and nothing from
the network. Deterministic: running it again rewrites the same bytes.

    .venv/bin/python tests/data/drift/generate.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_wine

HERE = Path(__file__).resolve().parent
REFERENCE_ROWS = 500
STREAM_ROWS = 1000
ONSET = 500  # the stream is judged in windows of 500 rows: one clean window, one shifted
SHIFTED = "proanthocyanins"


def _resample(table: pd.DataFrame, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """Rows drawn with replacement: i.i.d. like the public cases, with the wine table's own distribution."""
    return table.iloc[rng.integers(0, len(table), rows)].reset_index(drop=True)


def main() -> None:
    wine = load_wine(as_frame=True).data
    rng = np.random.default_rng(2024)
    reference = _resample(wine, REFERENCE_ROWS, rng)
    stream = _resample(wine, STREAM_ROWS, rng)
    shift = float(wine[SHIFTED].std())
    stream.loc[ONSET:, SHIFTED] = (stream.loc[ONSET:, SHIFTED] + shift).round(2)
    reference.to_csv(HERE / "wine__reference.csv", index=False)
    stream.to_csv(HERE / "wine__mean_shift_1sd.csv", index=False)
    case = {
        "name": "wine/mean_shift_1sd",
        "reference": "wine__reference.csv",
        "stream": "wine__mean_shift_1sd.csv",
        "onset": ONSET,
        "shift": {"kind": "mean", "column": SHIFTED, "amount": 1.0},
    }
    rows = {"reference": REFERENCE_ROWS, "stream": STREAM_ROWS, "onset": ONSET}
    (HERE / "cases.json").write_text(json.dumps({"rows": rows, "cases": [case]}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
