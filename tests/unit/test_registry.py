"""The filesystem model registry: versions, metadata, atomic aliases, idempotency; and fault injection — a
process running retrain/promote/rollback is SIGKILLed at 20 random points, then the operation is resumed
like a restarted daemon would: the registry stays consistent and nothing happens twice."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from aiops_remediations.retrain import RetrainRemediation
from aiops_remediations.rollback import RollbackRemediation
from sklearn.linear_model import LogisticRegression

from aiops import faults
from aiops.errors import RegistryError
from aiops.registry import FilesystemRegistry, open_registry
from aiops.types import ActionContext, IncidentState, IncidentView, Severity

FEATURES = ["x0", "x1", "x2"]


def labelled(concept: int, n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Rows whose label depends on feature ``concept``: a model trained on one concept fails on the other."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    frame = pd.DataFrame(x, columns=FEATURES)
    frame["y"] = (x[:, concept] > 0).astype(int)
    return frame


def fitted(concept: int) -> LogisticRegression:
    data = labelled(concept, seed=99)
    return LogisticRegression().fit(data[FEATURES], data["y"])


def incident() -> IncidentView:
    return IncidentView(1, "fp", "model-quality", IncidentState.FIRING, Severity.WARNING, "accuracy low", {}, 0.0)


def ctx(key: str, handle_file: Path | None = None, handle: dict[str, Any] | None = None) -> ActionContext:
    def save(h: Any) -> None:
        if handle_file is not None:
            handle_file.write_text(json.dumps(dict(h)))

    return ActionContext(key, incident(), deadline=1e18, save_handle=save, now=lambda: 0.0, handle=handle)


def test_versions_metadata_aliases_and_idempotency(tmp_path: Path) -> None:
    reg = FilesystemRegistry(tmp_path)
    v1 = reg.register("m", fitted(0), {"metrics": {"accuracy": 0.9}, "parent": None}, key="k1")
    assert reg.register("m", fitted(1), {}, key="k1") == v1, "same key must not add a version"
    v2 = reg.register("m", fitted(1), {"parent": v1}, key="k2")
    assert reg.versions("m") == ["1", "2"]
    meta = reg.metadata("m", v2)
    assert meta["parent"] == "1" and len(meta["sha256"]) == 64 and meta["idempotency_key"] == "k2"
    reg.promote("m", v1, key="p1")
    first = reg.promote("m", v2, key="p2")
    assert reg.promote("m", v2, key="p2") == first, "a repeated promote returns the recorded result"
    assert reg.state("m")["aliases"] == {"champion": "2", "previous": "1"}
    assert reg.load("m").coef_.shape == (1, 3)
    back = reg.rollback("m", key="r1")
    assert back.before["champion"] == "2" and back.champion == "1" and reg.alias("m", "champion") == "1"
    assert reg.rollback("m", key="r1") == back
    assert reg.state("m")["bad"] == ["2"]
    assert reg.fsck("m") == []
    with pytest.raises(RegistryError, match="no 'previous'"):
        reg.rollback("m", key="r2")


def test_tampered_artefact_is_refused(tmp_path: Path) -> None:
    reg = FilesystemRegistry(tmp_path)
    v1 = reg.register("m", fitted(0), {}, key="k1")
    path = tmp_path / "m" / "versions" / "000001" / "model.joblib"
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(RegistryError, match="hash mismatch"):
        reg.load("m", v1)
    assert reg.fsck("m") and "hash mismatch" in reg.fsck("m")[0]
    with pytest.raises(RegistryError, match="hash mismatch"):
        reg.promote("m", v1, key="p")


def test_open_registry_by_uri(tmp_path: Path) -> None:
    assert isinstance(open_registry(f"file://{tmp_path}"), FilesystemRegistry)


# -- fault injection -------------------------------------------------------------------------------------------

RETRAIN_POINTS = [p for p in faults.REGISTRY_POINTS if not p.startswith("rollback:")]
ROLLBACK_POINTS = [p for p in faults.REGISTRY_POINTS if p.startswith("rollback:")]


def _child(op: str, params: dict[str, Any], key: str, handle_file: str, point: str) -> None:
    faults.arm(point)
    remediation: Any = RetrainRemediation(**params) if op == "retrain" else RollbackRemediation(**params)
    remediation.execute(remediation.plan(incident()), ctx(key, Path(handle_file)))
    os._exit(0)


def test_sigkill_at_20_random_points_leaves_the_registry_consistent_and_runs_nothing_twice(tmp_path: Path) -> None:
    rng = random.Random(1234)
    root = tmp_path / "registry"
    reg = FilesystemRegistry(root)
    concept_of: dict[str, int] = {}
    v1 = reg.register("m", fitted(0), {"parent": None}, key="seed")
    reg.promote("m", v1, key="seed-promote")
    concept_of[v1] = 0
    data = tmp_path / "labelled.csv"
    base = {"registry": str(root), "model": "m"}
    retrain = {**base, "data": {"path": str(data), "target": "y", "features": FEATURES}, "min_improvement": 0.05}
    forked = multiprocessing.get_context("fork")
    killed = 0
    hit: set[tuple[str, str]] = set()
    order: list[tuple[str, str]] = []
    shuffled = {"retrain": rng.sample(RETRAIN_POINTS, len(RETRAIN_POINTS)), "rollback": rng.sample(ROLLBACK_POINTS, 3)}
    for i in range(20):
        champion = reg.alias("m", "champion")
        assert champion is not None
        can_rollback = reg.alias("m", "previous") is not None
        op = "rollback" if can_rollback and rng.random() < 0.35 else "retrain"
        points = ROLLBACK_POINTS if op == "rollback" else RETRAIN_POINTS
        done = sum(1 for o, _ in order if o == op)
        point = shuffled[op][done % len(points)]  # every point gets hit; the order is random
        order.append((op, point))
        concept = 1 - concept_of[champion]  # the live data moved away from what the champion learned
        labelled(concept, seed=i).to_csv(data, index=False)
        key = f"incident-{i}-rung-0-attempt-1"
        handle_file = tmp_path / f"handle-{i}.json"
        params = retrain if op == "retrain" else base
        proc = forked.Process(target=_child, args=(op, params, key, str(handle_file), point))
        proc.start()
        proc.join(60)
        assert proc.exitcode == -9, f"round {i}: {op} was not killed at {point} (exit {proc.exitcode})"
        killed += 1
        hit.add((op, point))
        assert reg.fsck("m") == [], f"round {i}: inconsistent after SIGKILL at {point}"
        assert reg.alias("m", "champion") is not None
        # the restarted daemon: resume from the saved handle (or run, if none was saved) under the same key
        handle = json.loads(handle_file.read_text()) if handle_file.exists() else None
        remediation: Any = RetrainRemediation(**params) if op == "retrain" else RollbackRemediation(**params)
        plan = remediation.plan(incident())
        run = remediation.resume if handle else remediation.execute
        outcome = run(plan, ctx(key, handle=handle))
        assert reg.fsck("m") == [], f"round {i}: inconsistent after resume"
        history = [h for h in reg.state("m")["history"] if h["key"] == key]
        assert len(history) <= 1, f"round {i}: alias moved twice under one key"
        if op == "retrain":
            versions = [v for v in reg.versions("m") if reg.metadata("m", v)["idempotency_key"] == key]
            assert len(versions) == 1, f"round {i}: {len(versions)} versions registered under one key"
            assert outcome.ok, f"round {i}: {outcome.summary}"
            assert reg.alias("m", "champion") == versions[0] and len(history) == 1
            concept_of[versions[0]] = concept
        else:
            assert outcome.ok and len(history) == 1
            assert reg.alias("m", "champion") == history[0]["after"]["champion"] != champion
        # a second resume (a second crash after finishing) changes nothing
        before = reg.state("m")
        again = run(plan, ctx(key, handle=handle))
        assert again.ok == outcome.ok and reg.state("m")["aliases"] == before["aliases"]
        reg.gc("m")
    assert killed == 20
    assert {op for op, _ in hit} == {"retrain", "rollback"} and len(hit) == 10, f"too little coverage: {sorted(hit)}"
    assert not list((root / "m" / "versions").glob(".tmp-*"))
