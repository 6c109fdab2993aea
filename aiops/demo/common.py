"""What the demo's processes share: the dataset, the file layout, the time scale and the bad model.

Why a module of its own: the model service, the feature pipeline, the promotion hook and the orchestrator
are separate processes (as they would be in production); they agree on paths and columns through this
module only, never through each other's internals.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL = "demo-model"
TABLE = "predictions"
# The ten "mean" measurements of scikit-learn's bundled Wisconsin breast-cancer data set (no download).
FEATURES = [
    "mean_radius",
    "mean_texture",
    "mean_perimeter",
    "mean_area",
    "mean_smoothness",
    "mean_compactness",
    "mean_concavity",
    "mean_concave_points",
    "mean_symmetry",
    "mean_fractal_dimension",
]
# The covariate drift of the demo: the upstream "recalibrated" its size sensors (x1.4 on these columns).
DRIFT_COLUMNS = FEATURES[:4]
DRIFT_FACTOR = 1.4
BAD_MODEL_DELAY = 0.15  # seconds per request added by the bad release (a debug build, say)


@dataclass(frozen=True)
class Layout:
    """Every file of one demo run, under one directory (nothing is written anywhere else)."""

    root: Path

    @property
    def registry(self) -> Path:
        return self.root / "registry"

    @property
    def db(self) -> Path:
        return self.root / "predictions.db"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.db}"

    @property
    def reference(self) -> Path:
        return self.root / "reference.csv"

    @property
    def control(self) -> Path:
        return self.root / "control.json"

    @property
    def pipeline_pid(self) -> Path:
        return self.root / "pipeline.pid"

    @property
    def pipeline_ready(self) -> Path:
        return self.root / "pipeline.ready"

    @property
    def config(self) -> Path:
        return self.root / "aiops.yaml"

    @property
    def store_url(self) -> str:
        return f"sqlite:///{self.root / 'aiops.db'}"


def load_pool() -> Any:
    """The rows production traffic is drawn from: features plus the true label (1 = benign)."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    frame = data.data.iloc[:, : len(FEATURES)].copy()
    frame.columns = FEATURES
    frame["label"] = data.target.astype(int)
    return frame


def train_champion(seed: int = 0) -> tuple[Any, float]:
    """A scaled logistic regression on 70 % of the pool; returns the model and its held-out accuracy."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pool = load_pool()
    order = np.random.default_rng(seed).permutation(len(pool))
    cut = int(len(pool) * 0.7)
    train, test = pool.iloc[order[:cut]], pool.iloc[order[cut:]]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(train[FEATURES], train["label"])
    return model, float((model.predict(test[FEATURES]) == test["label"]).mean())


class BadModel:
    """The release that should never have shipped: slow (a debug build) and with its labels inverted.

    It lives in this importable module so that the registry can pickle it like any other artefact.
    """

    def __init__(self, inner: Any, delay: float = BAD_MODEL_DELAY) -> None:
        self.inner = inner
        self.delay = delay

    def predict(self, x: Any) -> Any:
        time.sleep(self.delay)
        return 1 - self.inner.predict(x)

    def predict_proba(self, x: Any) -> Any:
        time.sleep(self.delay)
        return self.inner.predict_proba(x)[:, ::-1]


def read_control(layout: Layout) -> dict[str, Any]:
    """The faults the orchestrator injects (drift factor), read by the pipeline before every batch."""
    try:
        data = json.loads(layout.control.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_control(layout: Layout, **values: Any) -> None:
    data = {**read_control(layout), **values}
    tmp = layout.control.with_suffix(".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, layout.control)
