"""The MLflow adapter against a real local MLflow store (``mlflow-skinny`` from PyPI, file backend, no
server): versions with artefact hashes, ``champion``/``previous`` aliases, idempotent register/promote/
rollback, a crash between the two alias writes, and ``retrain`` end to end with ``registry: mlflow:...``."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import Any

import mlflow  # noqa: F401  - the test extra installs mlflow-skinny; a missing one fails, never skips
import numpy as np
import pandas as pd
import pytest
from aiops_remediations.retrain import RetrainRemediation

from aiops import faults
from aiops.registry import open_registry
from aiops.registry.mlflow import MlflowRegistry
from tests.unit.test_registry import FEATURES, ctx, fitted, incident, labelled

os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps its file store behind this


@pytest.fixture
def reg(tmp_path: Path) -> MlflowRegistry:
    registry = open_registry(f"mlflow:file://{tmp_path}/mlruns")
    assert isinstance(registry, MlflowRegistry)
    return registry


def test_register_promote_rollback_with_aliases(reg: MlflowRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    v1 = reg.register("churn", fitted(0), {"parent": None, "metrics": {"accuracy": 0.9}}, key="k1")
    assert reg.register("churn", fitted(0), {}, key="k1") == v1
    v2 = reg.register("churn", fitted(1), {"parent": v1}, key="k2")
    assert reg.versions("churn") == ["1", "2"]
    assert reg.metadata("churn", v2)["parent"] == "1"
    reg.promote("churn", v1, key="p1")
    result = reg.promote("churn", v2, key="p2")
    assert reg.promote("churn", v2, key="p2").after == result.after
    assert reg.alias("churn", "champion") == "2" and reg.alias("churn", "previous") == "1"
    model: Any = reg.load("churn")
    assert model.coef_.shape == (1, 3)
    client = reg.client
    assert str(client.get_model_version_by_alias("churn", "champion").version) == "2"
    import mlflow.pyfunc

    monkeypatch.setenv("MLFLOW_TRACKING_URI", reg.tracking_uri)
    served = mlflow.pyfunc.load_model("models:/churn@champion")  # what a serving side does
    rows = pd.DataFrame(np.zeros((2, 3)), columns=FEATURES)
    assert list(served.predict(rows)) == list(model.predict(rows))
    back = reg.rollback("churn", key="r1")
    assert back.champion == "1" and reg.rollback("churn", key="r1").after == back.after
    assert reg.alias("churn", "champion") == "1" and reg.alias("churn", "previous") is None
    assert reg.fsck("churn") == []


def _promote_and_die(uri: str, version: str) -> None:
    faults.arm("promote:tmp-written")
    MlflowRegistry(uri).promote("churn", version, key="p-crash")
    os._exit(0)


def test_crash_between_alias_writes_leaves_champion_intact_and_resume_finishes(
    reg: MlflowRegistry, tmp_path: Path
) -> None:
    v1 = reg.register("churn", fitted(0), {}, key="k1")
    reg.promote("churn", v1, key="p1")
    v2 = reg.register("churn", fitted(1), {}, key="k2")
    proc = multiprocessing.get_context("fork").Process(target=_promote_and_die, args=(reg.tracking_uri, v2))
    proc.start()
    proc.join(120)
    assert proc.exitcode == -9
    fresh = MlflowRegistry(reg.tracking_uri)
    assert fresh.alias("churn", "champion") == "1", "champion must not half-move"
    assert fresh.fsck("churn") == []
    fresh.promote("churn", v2, key="p-crash")
    assert fresh.alias("churn", "champion") == "2" and fresh.alias("churn", "previous") == "1"


def test_retrain_against_mlflow(reg: MlflowRegistry, tmp_path: Path) -> None:
    v1 = reg.register("churn", fitted(0), {}, key="seed")
    reg.promote("churn", v1, key="seed-p")
    labelled(1).to_csv(tmp_path / "w.csv", index=False)
    retrain = RetrainRemediation(
        registry=f"mlflow:{reg.tracking_uri}",
        model="churn",
        data={"path": str(tmp_path / "w.csv"), "target": "y", "features": FEATURES},
    )
    out = retrain.execute(retrain.plan(incident()), ctx("retrain-1"))
    assert out.ok, out.summary
    assert reg.alias("churn", "champion") == "2" and reg.metadata("churn", "2")["decision"] == "promote"
    again = retrain.execute(retrain.plan(incident()), ctx("retrain-1"))
    assert again.ok and reg.versions("churn") == ["1", "2"]
