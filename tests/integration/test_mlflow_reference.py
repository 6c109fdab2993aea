"""The drift reference from the MLflow model registry, against a real local MLflow store (``mlflow-skinny``,
file backend, no server): the champion version's run -> its logged training dataset, a run artefact, or its
training window (run params, or the metadata the retrain remediation writes); refitted when the alias moves."""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path
from typing import Any

import mlflow  # the test extra installs mlflow-skinny; a missing one fails, never skips
import mlflow.data
import numpy as np
import pandas as pd
import pytest
from aiops_detectors.drift.tabular import TabularDrift
from mlflow import MlflowClient

from aiops.errors import DetectorError
from aiops.registry.mlflow import MlflowRegistry
from aiops.types import Frame

os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps its file store behind this

FEATURES = ["a", "b", "colour"]


def _table(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    base = rng.normal(size=n)
    return pd.DataFrame(
        {
            "a": base + shift,
            "b": 0.8 * base + 0.6 * rng.normal(size=n),
            "colour": rng.choice(["red", "green", "blue"], size=n, p=[0.5, 0.3, 0.2]),
            "y": (base > 0).astype(int),
        }
    )


def _frame(df: pd.DataFrame, t: float = 1.0) -> Frame:
    df = df[FEATURES]
    return Frame(source="t", collected_at=t, rows=tuple(df.to_dict("records")), columns=tuple(df.columns))


@pytest.fixture
def uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A file MLflow store; the fluent API (``mlflow.start_run``, what training code calls) writes to it."""
    store = f"file://{tmp_path}/mlruns"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", store)
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return store


def _train(
    uri: str,
    version_of: str = "churn",
    *,
    datasets: tuple[tuple[pd.DataFrame, str, str], ...] = (),
    artifact: tuple[pd.DataFrame, Path] | None = None,
    params: dict[str, Any] | None = None,
) -> str:
    """A training run as MLflow users write it, registered as a new version of ``version_of``."""
    client = MlflowClient(uri, uri)
    with mlflow.start_run() as run:
        for data, source, context in datasets:
            mlflow.log_input(mlflow.data.from_pandas(data, source=source, name=context, targets="y"), context=context)
        if artifact is not None:
            data, path = artifact
            data.to_csv(path, index=False)
            mlflow.log_artifact(str(path), "reference")
        if params:
            mlflow.log_params(params)
    try:
        client.get_registered_model(version_of)
    except mlflow.exceptions.MlflowException:
        client.create_registered_model(version_of)
    mv = client.create_model_version(version_of, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    return str(mv.version)


def _champion(uri: str, version: str, model: str = "churn") -> None:
    MlflowClient(uri, uri).set_registered_model_alias(model, "champion", version)


def test_logged_training_dataset_is_the_reference_and_a_moved_alias_refits(uri: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    old, new = _table(rng, 1500), _table(rng, 1200, shift=1.0)
    old.to_parquet(tmp_path / "old.parquet")
    new.to_csv(tmp_path / "new.csv", index=False)
    holdout = _table(rng, 300, shift=-2.0)  # logged too, as "validation": not the reference
    holdout.to_csv(tmp_path / "holdout.csv", index=False)
    v1 = _train(
        uri,
        datasets=(
            (old, str(tmp_path / "old.parquet"), "training"),
            (holdout, f"file://{tmp_path}/holdout.csv", "validation"),
        ),
    )
    _champion(uri, v1)

    det = TabularDrift(
        reference_registry={"backend": "mlflow", "tracking_uri": uri, "model": "churn"}, columns=FEATURES
    )
    assert det.evaluate(_frame(_table(rng, 500))) == []
    assert det.reference_version_ == "1" and det.n_reference_ == 1500 and det.columns_ == FEATURES
    assert det.evaluate(_frame(_table(rng, 500, shift=1.0))) != []
    (tmp_path / "old.parquet").unlink()  # while the alias stays, the data is not read again
    assert det.evaluate(_frame(_table(rng, 500))) == []

    v2 = _train(uri, datasets=((new, f"file://{tmp_path}/new.csv", "training"),))
    _champion(uri, v2)  # a retrained model was promoted
    assert det.evaluate(_frame(_table(rng, 500, shift=1.0))) == []  # refitted on v2's training data
    assert det.reference_version_ == "2" and det.n_reference_ == 1200
    assert det.evaluate(_frame(_table(rng, 500))) != []


def test_run_artefact_is_the_reference_when_configured(uri: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    v1 = _train(uri, artifact=(_table(rng, 900), tmp_path / "train.csv"))
    _champion(uri, v1)
    spec = {"backend": "mlflow", "tracking_uri": uri, "model": "churn", "artifact_path": "reference/train.csv"}
    det = TabularDrift(reference_registry=spec, columns=FEATURES, max_reference_rows=800)
    assert det.evaluate(_frame(_table(rng, 400))) == []
    assert det.reference_version_ == "1" and det.n_reference_ == 800  # sampled while read

    v2 = _train(uri, artifact=(_table(rng, 700, shift=1.0), tmp_path / "train.csv"))
    _champion(uri, v2)
    assert det.evaluate(_frame(_table(rng, 400, shift=1.0))) == []
    assert det.reference_version_ == "2" and det.n_reference_ == 700


def test_training_window_in_run_params_reads_the_window_in_sql(uri: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    inside = _table(rng, 1000).assign(ts=1_700_000_000.0 + 60.0 * np.arange(1000))
    outside = _table(rng, 1000, shift=3.0).assign(ts=1_600_000_000.0 + 60.0 * np.arange(1000))
    with sqlite3.connect(tmp_path / "labels.db") as conn:
        pd.concat([outside, inside]).to_sql("labels", conn, index=False)
    window = {"source": "labels", "from": inside["ts"].iloc[0], "to": inside["ts"].iloc[-1], "rows": 800}
    params = {f"training_window.{k}": v for k, v in window.items()} | {"features": "a,b,colour"}
    _champion(uri, _train(uri, params=params))
    det = TabularDrift(
        reference_registry={
            "backend": "mlflow",
            "tracking_uri": uri,
            "model": "churn",
            "url": f"sqlite:///{tmp_path}/labels.db",
            "time_column": "ts",
        }
    )
    assert det.evaluate(_frame(_table(rng, 400))) == []
    assert det.n_reference_ == 800 and det.columns_ == FEATURES  # the run's features: no label, no time


def test_retrain_remediation_on_mlflow_moves_the_reference(uri: str, tmp_path: Path) -> None:
    """The retrain remediation's own metadata (the ``aiops.meta`` version tag) names the training window."""
    from aiops_remediations.retrain import RetrainRemediation

    from tests.unit.test_registry import FEATURES as X
    from tests.unit.test_registry import ctx, fitted, incident, labelled

    reg = MlflowRegistry(uri)
    seed_data = labelled(0, n=1000, seed=99)
    seed_data[X].to_csv(tmp_path / "v1.csv", index=False)
    reg.promote("m", reg.register("m", fitted(0), {"training_data": str(tmp_path / "v1.csv")}, key="seed"), key="s")

    fresh = labelled(1, n=1000, seed=3)
    fresh["x0"] += 1.0  # the world moved (and the concept changed: the champion fails)
    fresh["ts"] = 1_700_000_000.0 + fresh.index
    fresh.to_csv(tmp_path / "fresh.csv", index=False)
    spec = {"backend": "mlflow", "tracking_uri": uri, "model": "m", "time_column": "ts"}
    det = TabularDrift(reference_registry=spec)
    current = labelled(1, n=500, seed=4)[X].assign(x0=lambda d: d["x0"] + 1.0)
    current_frame = Frame(source="t", collected_at=1.0, rows=tuple(current.to_dict("records")), columns=tuple(X))
    assert det.evaluate(current_frame) != [] and det.reference_version_ == "1"

    retrain = RetrainRemediation(
        registry=f"mlflow:{uri}",
        model="m",
        data={"path": str(tmp_path / "fresh.csv"), "target": "y", "time_column": "ts", "features": X},
    )
    out = retrain.execute(retrain.plan(incident()), ctx("retrain-1"))
    assert out.ok and reg.alias("m", "champion") == "2", out.summary
    assert det.evaluate(current_frame) == []  # tested against the new model's training rows
    assert det.reference_version_ == "2" and det.n_reference_ == 700 and det.columns_ == X


def test_mlflow_reference_errors(uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    rows = _frame(_table(rng, 50))
    spec = {"backend": "mlflow", "tracking_uri": uri, "model": "churn"}
    with pytest.raises(DetectorError, match="no 'champion' alias in MLflow"):
        TabularDrift(reference_registry=spec).evaluate(rows)
    _champion(uri, _train(uri))
    with pytest.raises(DetectorError, match=r"names no training data: its run \w+ logged no dataset input"):
        TabularDrift(reference_registry=spec).evaluate(rows)
    with pytest.raises(DetectorError, match=r"artefact 'reference/nope\.csv' of run"):
        TabularDrift(reference_registry={**spec, "artifact_path": "reference/nope.csv"}).evaluate(rows)
    a, b = _table(rng, 100), _table(rng, 100, shift=1.0)
    a.to_csv(tmp_path / "a.csv", index=False)
    b.to_csv(tmp_path / "b.csv", index=False)
    two = ((a, str(tmp_path / "a.csv"), "training"), (b, str(tmp_path / "b.csv"), "training"))
    _champion(uri, _train(uri, datasets=two))
    with pytest.raises(DetectorError, match="several datasets"):
        TabularDrift(reference_registry=spec).evaluate(rows)
    with pytest.raises(DetectorError, match="logged no dataset 'nope'"):
        TabularDrift(reference_registry={**spec, "dataset": "nope"}).evaluate(rows)

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    down = {**spec, "tracking_uri": "http://admin:s3cret@127.0.0.1:9"}
    with pytest.raises(DetectorError, match=re.escape("MLflow at http://admin:***@127.0.0.1:9")) as info:
        TabularDrift(reference_registry=down).evaluate(rows)
    assert "s3cret" not in str(info.value)


def test_logged_dataset_at_a_remote_uri_is_downloaded(uri: str, tmp_path: Path) -> None:
    """A dataset source MLflow can fetch (here http; s3, gs... the same way) is downloaded, read, and deleted."""
    import functools
    import http.server
    import threading

    rng = np.random.default_rng(5)
    served = tmp_path / "served"
    served.mkdir()
    data = _table(rng, 600)
    data.to_parquet(served / "train.parquet")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        source = f"http://127.0.0.1:{server.server_address[1]}/train.parquet"
        _champion(uri, _train(uri, datasets=((data, source, "training"),)))
        spec = {"backend": "mlflow", "tracking_uri": uri, "model": "churn"}
        det = TabularDrift(reference_registry=spec, columns=FEATURES)  # the label is in the dataset: not tested
        assert det.evaluate(_frame(_table(rng, 300))) == []
        assert det.n_reference_ == 600 and det.columns_ == FEATURES
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
