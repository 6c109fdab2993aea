"""retrain (champion/challenger gate, data from CSV/Parquet/SQL, a user trainer), rollback with a serving
reload, and restart with a readiness probe."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiops_remediations.restart import RestartRemediation
from aiops_remediations.retrain import RetrainParams, RetrainRemediation
from aiops_remediations.rollback import RollbackRemediation

from aiops.registry import FilesystemRegistry
from aiops.types import Plan
from tests.unit.test_registry import FEATURES, ctx, fitted, incident, labelled


@pytest.fixture
def registry(tmp_path: Path) -> FilesystemRegistry:
    reg = FilesystemRegistry(tmp_path / "registry")
    v1 = reg.register("m", fitted(0), {"parent": None}, key="seed")
    reg.promote("m", v1, key="seed-promote")
    return reg


def _retrain(reg: FilesystemRegistry, data: dict[str, Any], **extra: Any) -> RetrainRemediation:
    return RetrainRemediation(registry=str(reg.root), model="m", data={"target": "y", **data}, **extra)


def _run(remediation: Any, key: str = "k1") -> Any:
    plan: Plan = remediation.plan(incident())
    return remediation.execute(plan, ctx(key))


def test_challenger_wins_and_is_promoted_with_lineage(registry: FilesystemRegistry, tmp_path: Path) -> None:
    labelled(1).to_parquet(tmp_path / "window.parquet")
    marker = tmp_path / "reloaded"
    reload = {"argv": [sys.executable, "-c", f"open({str(marker)!r}, 'w').write('{{model}}@{{version}}')"]}
    out = _run(_retrain(registry, {"path": str(tmp_path / "window.parquet")}, reload=reload))
    assert out.ok, out.summary
    assert registry.state("m")["aliases"] == {"champion": "2", "previous": "1"}
    meta = registry.metadata("m", "2")
    assert meta["parent"] == "1" and meta["decision"] == "promote"
    assert meta["challenger_score"] > meta["champion_score"] + 0.3
    assert meta["training_window"]["rows"] + meta["training_window"]["holdout_rows"] == 400
    assert marker.read_text() == "m@2"


def test_challenger_that_does_not_win_by_the_margin_is_not_promoted(
    registry: FilesystemRegistry, tmp_path: Path
) -> None:
    labelled(0, seed=5).to_csv(tmp_path / "window.csv", index=False)  # same concept: no better model exists
    out = _run(_retrain(registry, {"path": str(tmp_path / "window.csv")}, min_improvement=0.02))
    assert not out.ok and out.summary.startswith("retrain did not help")
    assert registry.alias("m", "champion") == "1"
    assert registry.metadata("m", "2")["decision"] == "reject", "the loser is kept for the audit trail"
    again = _run(_retrain(registry, {"path": str(tmp_path / "window.csv")}, min_improvement=0.02))
    assert not again.ok and registry.versions("m") == ["1", "2"], "same key: not retrained twice"


def test_window_from_sql_with_time_column_and_a_user_trainer(registry: FilesystemRegistry, tmp_path: Path) -> None:
    frame = labelled(1, n=600)
    frame["ts"] = time.time() - 3600 + frame.index  # the newest rows are the holdout
    frame.loc[:99, "ts"] = time.time() - 30 * 86400  # older than the window: ignored
    url = f"sqlite:///{tmp_path}/labels.db"
    engine = sa.create_engine(url)
    frame.to_sql("labels", engine, index=False)
    engine.dispose()
    (tmp_path / "mytrainer.py").write_text(
        "from sklearn.tree import DecisionTreeClassifier\n"
        "def train(x, y, champion):\n"
        "    return DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, y)\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        data = {"sql_url": url, "table": "labels", "time_column": "ts", "window": "7d", "features": FEATURES}
        out = _run(_retrain(registry, data, trainer="mytrainer:train"))
    finally:
        sys.path.remove(str(tmp_path))
    assert out.ok, out.summary
    assert type(registry.load("m")).__name__ == "DecisionTreeClassifier"
    assert registry.metadata("m", "2")["training_window"]["rows"] + 150 == 500


def test_first_version_from_a_trainer_is_promoted_without_a_champion(tmp_path: Path) -> None:
    reg = FilesystemRegistry(tmp_path / "registry")  # a new model: nothing registered, no champion to beat
    labelled(1).to_csv(tmp_path / "window.csv", index=False)
    (tmp_path / "firsttrainer.py").write_text(
        "from sklearn.linear_model import LogisticRegression\n"
        "def train(x, y, champion):\n"
        "    assert champion is None\n"
        "    return LogisticRegression().fit(x, y)\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        out = _run(_retrain(reg, {"path": str(tmp_path / "window.csv")}, trainer="firsttrainer:train"))
    finally:
        sys.path.remove(str(tmp_path))
    assert out.ok, out.summary
    assert out.summary.startswith("first version, no champion to beat (accuracy ") and "-> version 1" in out.summary
    assert reg.alias("m", "champion") == "1"
    meta = reg.metadata("m", "1")
    assert meta["decision"] == "promote" and meta["champion_score"] is None and meta["improvement"] is None
    json.dumps(meta, allow_nan=False)  # no infinity in the stored metadata


def test_window_read_through_the_table_source_plugin(registry: FilesystemRegistry, tmp_path: Path) -> None:
    frame = labelled(1, n=500)
    frame["ts"] = time.time() - 600 + frame.index
    frame.to_csv(tmp_path / "predictions.csv", index=False)
    source = {"type": "table", "path": str(tmp_path / "predictions.csv"), "timestamp_column": "ts", "max_rows": 400}
    out = _run(_retrain(registry, {"source": source, "features": FEATURES, "time_column": "ts"}))
    assert out.ok, out.summary
    window = registry.metadata("m", "2")["training_window"]
    assert window["rows"] + window["holdout_rows"] == 400 and window["source"] == "table"


def test_params_are_validated() -> None:
    with pytest.raises(ValueError, match="exactly one of 'source', 'path' or 'sql_url'"):
        RetrainParams.model_validate({"registry": "/r", "model": "m", "data": {"target": "y"}})
    with pytest.raises(ValueError, match="module:function"):
        RetrainParams.model_validate(
            {"registry": "/r", "model": "m", "data": {"path": "x.csv", "target": "y"}, "trainer": "nocolon"}
        )


def test_rollback_moves_champion_back_and_reloads_serving(registry: FilesystemRegistry, tmp_path: Path) -> None:
    v2 = registry.register("m", fitted(1), {"parent": "1"}, key="bad-release")
    registry.promote("m", v2, key="release")
    log = tmp_path / "reload.log"
    reload = {"argv": [sys.executable, "-c", f"open({str(log)!r}, 'a').write('{{version}}\\n')"]}
    rollback = RollbackRemediation(registry=str(registry.root), model="m", reload=reload)
    out = _run(rollback, key="rb-1")
    assert out.ok and out.summary == "m@champion: version 2 -> 1"
    assert _run(rollback, key="rb-1").ok  # resumed after a crash: same result, no second rollback
    assert registry.alias("m", "champion") == "1" and registry.state("m")["bad"] == ["2"]
    assert log.read_text().split() == ["1", "1"], "the reload is idempotent and re-sent"
    failed = _run(rollback, key="rb-2")
    assert not failed.ok and "no 'previous'" in failed.summary


SERVER = """
import os, sys, time
from pathlib import Path
time.sleep(0.3)
Path(sys.argv[1]).write_text(str(os.getpid()))
time.sleep(60)
"""


def test_restart_stops_the_old_process_and_waits_for_readiness(tmp_path: Path) -> None:
    script = tmp_path / "pipeline.py"
    script.write_text(SERVER)
    ready = tmp_path / "ready"
    params = {
        "argv": [sys.executable, str(script), str(ready)],
        "pidfile": str(tmp_path / "pipeline.pid"),
        "ready_file": str(ready),
        "ready_timeout": "10s",
        "stop_timeout": "3s",
    }
    restart = RestartRemediation(**params)
    first = _run(restart, key="r1")
    assert first.ok, first.summary
    old_pid = first.details["pid"]
    handles: list[dict[str, Any]] = []
    second = restart.execute(restart.plan(incident()), ctx("r2", handle_file=tmp_path / "h.json"))
    handles.append(json.loads((tmp_path / "h.json").read_text()))
    assert second.ok and second.details["pid"] != old_pid
    assert handles[0]["pid"] == second.details["pid"]
    import psutil

    assert not psutil.pid_exists(old_pid) or psutil.Process(old_pid).status() == psutil.STATUS_ZOMBIE
    resumed = restart.resume(restart.plan(incident()), ctx("r2", handle=handles[0]))
    assert resumed is not None and resumed.ok
    psutil.Process(second.details["pid"]).kill()
    with pytest.raises(ValueError, match="readiness probe"):
        RestartRemediation(argv=["x"], pidfile="p")
