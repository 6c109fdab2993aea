"""ML remediation end to end, with the daemon as a real process.

A real scikit-learn model served from the filesystem registry scores live labelled traffic; the "serving
side" (a thread here) resolves ``champion`` on every batch and writes the batch accuracy to a CSV that the
daemon's ``file`` source reads, with a ``threshold`` detector below 0.8.

1. The live data drifts (the concept moves to another feature): accuracy drops, the daemon retrains on the
   recent labelled window, the challenger wins, ``champion`` moves, serving picks it up, verification
   passes and the incident resolves.
2. A bad version was shipped and the label feed is broken the same way: the challenger cannot beat the
   champion by the margin, nothing is promoted ("retrain did not help"), the ladder rolls back to the
   previous good version, and that heals.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from aiops import faults
from aiops.registry import FilesystemRegistry
from tests.e2e.daemon import DaemonProcess, wait_for

FEATURES = ["x0", "x1", "x2"]

CONFIG = """
store: {{url: "sqlite:///{work}/aiops.db"}}
state_dir: {work}/state
checks:
  - name: model-quality
    every: 0.5s
    source: {{type: file, path: "{work}/quality.csv", value_columns: [accuracy]}}
    detectors:
      - {{type: threshold, below: 0.8}}
    labels: {{model: churn}}
    policy:
      cooldown: 0s
      verify: {{settle: 0.6s, window: 20s}}
      actions:
        - type: retrain
          registry: "{work}/registry"
          model: churn
          data: {{path: "{work}/labelled.csv", target: y, features: [x0, x1, x2]}}
          metric: accuracy
          min_improvement: 0.05
          reload: {{argv: ["{python}", "-c", "open('{work}/reload.log', 'a').write('{{version}}\\\\n')"]}}
          timeout: 60s
        - type: rollback
          registry: "{work}/registry"
          model: churn
          reload: {{argv: ["{python}", "-c", "open('{work}/reload.log', 'a').write('{{version}}\\\\n')"]}}
"""


def batch(concept: int, n: int, rng: np.random.Generator, flip: bool = False) -> pd.DataFrame:
    x = rng.normal(size=(n, 3))
    frame = pd.DataFrame(x, columns=FEATURES)
    y = (x[:, concept] > 0).astype(int)
    frame["y"] = 1 - y if flip else y
    return frame


def fit(frame: pd.DataFrame) -> LogisticRegression:
    return LogisticRegression().fit(frame[FEATURES], frame["y"])


class Serving:
    """Plays the model server: resolves champion (reloading on change), scores live traffic, writes accuracy."""

    def __init__(self, work: Path) -> None:
        self.registry = FilesystemRegistry(work / "registry")
        self.path = work / "quality.csv"
        self.path.write_text("timestamp,accuracy\n")
        self.concept = 0
        self.versions_served: list[str] = []
        self._model: tuple[str, Any] | None = None
        self._rng = np.random.default_rng(3)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self.path.open("a") as out:
            while not self._stop.wait(0.1):
                version = self.registry.alias("churn", "champion")
                assert version is not None
                if self._model is None or self._model[0] != version:
                    self._model = (version, self.registry.load("churn", version))
                    self.versions_served.append(version)
                live = batch(self.concept, 200, self._rng)
                accuracy = float((self._model[1].predict(live[FEATURES]) == live["y"]).mean())
                out.write(f"{time.time():.4f},{accuracy:.4f}\n")
                out.flush()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


@pytest.fixture
def ml_env(tmp_path: Path) -> Iterator[tuple[Path, FilesystemRegistry]]:
    reg = FilesystemRegistry(tmp_path / "registry")
    yield tmp_path, reg


def _start(work: Path) -> tuple[DaemonProcess, Serving]:
    config = work / "aiops.yaml"
    config.write_text(CONFIG.format(work=work, python=sys.executable))
    serving = Serving(work)
    return DaemonProcess(config, work).start(), serving


def _actions(daemon: DaemonProcess) -> list[dict[str, Any]]:
    incidents = daemon.incidents()
    return [a for a in reversed(incidents[0]["actions"])] if incidents else []


def test_drift_retrain_challenger_wins_alias_moves_and_incident_resolves(
    ml_env: tuple[Path, FilesystemRegistry],
) -> None:
    work, reg = ml_env
    rng = np.random.default_rng(0)
    v1 = reg.register("churn", fit(batch(0, 2000, rng)), {"training_window": {"concept": 0}}, key="v1")
    reg.promote("churn", v1, key="release-1")
    daemon, serving = _start(work)
    try:
        time.sleep(1.5)
        assert daemon.incidents() == [], "a healthy model must not open an incident"
        batch(1, 1500, rng).to_csv(work / "labelled.csv", index=False)  # labels of the drifted traffic
        serving.concept = 1  # drift: the label now depends on another feature
        resolved = wait_for(daemon.api_resolved, 60, "a resolved incident", daemon.logs)
        inc = resolved[0]
        assert [t["to_state"] for t in inc["transitions"]] == ["firing", "remediating", "verifying", "resolved"]
        [action] = inc["actions"]
        assert action["action_type"] == "retrain" and action["state"] == "succeeded"
        assert "challenger won" in action["outcome"]["summary"]
        assert reg.state("churn")["aliases"] == {"champion": "2", "previous": "1"}
        assert reg.metadata("churn", "2")["parent"] == "1"
        assert reg.fsck("churn") == []
        assert serving.versions_served == ["1", "2"]
        assert (work / "reload.log").read_text().split() == ["2"]
        listing = daemon.cli("actions")
        assert listing.returncode == 0 and "retrain" in listing.stdout and "challenger won" in listing.stdout
        assert daemon.terminate() == 0
    finally:
        serving.stop()
        if daemon.proc and daemon.proc.poll() is None:
            daemon.kill()


def test_challenger_loses_nothing_promoted_ladder_rolls_back(ml_env: tuple[Path, FilesystemRegistry]) -> None:
    work, reg = ml_env
    rng = np.random.default_rng(1)
    good = reg.register("churn", fit(batch(0, 2000, rng)), {}, key="good")
    reg.promote("churn", good, key="release-1")
    bad = reg.register("churn", fit(batch(0, 2000, rng, flip=True)), {"parent": good}, key="bad")
    # the label feed has the same bug as the bad release: no retrain on it can do better
    batch(0, 1500, rng, flip=True).to_csv(work / "labelled.csv", index=False)
    daemon, serving = _start(work)
    try:
        time.sleep(1.0)
        reg.promote("churn", bad, key="release-2")  # the bad version ships
        resolved = wait_for(daemon.api_resolved, 60, "a resolved incident", daemon.logs)
        inc = resolved[0]
        assert [t["to_state"] for t in inc["transitions"]] == [
            "firing",
            "remediating",
            "firing",
            "remediating",
            "verifying",
            "resolved",
        ]
        retrain, rollback = reversed(inc["actions"])
        assert retrain["action_type"] == "retrain" and retrain["state"] == "failed"
        assert retrain["outcome"]["summary"].startswith("retrain did not help")
        assert rollback["action_type"] == "rollback" and rollback["state"] == "succeeded"
        state = reg.state("churn")
        assert state["aliases"]["champion"] == "1" and state["bad"] == ["2"]
        challenger = reg.metadata("churn", "3")
        assert challenger["decision"] == "reject", "the challenger is kept for the record, never promoted"
        assert [h["op"] for h in state["history"]] == ["promote", "promote", "rollback"]
        assert reg.fsck("churn") == []
        assert serving.versions_served[-1] == "1"
        assert (work / "reload.log").read_text().split() == ["1"]
        listing = daemon.cli("actions").stdout
        assert "retrain did not help" in listing and "circuit breaker retrain: closed, 1 consecutive" in listing
        assert daemon.terminate() == 0
    finally:
        serving.stop()
        if daemon.proc and daemon.proc.poll() is None:
            daemon.kill()


RETRAIN_POINTS = [p for p in faults.REGISTRY_POINTS if not p.startswith("rollback:")]


@pytest.mark.slow
def test_daemon_sigkilled_mid_retrain_resumes_without_doing_anything_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon itself is SIGKILLed at a random step of retrain/promote (``AIOPS_FAULT_POINT``); the next
    daemon adopts the running action, resumes it from its handle, and the registry ends consistent with
    exactly one new version and one alias move for the action's key."""
    rng = random.Random(6)
    for round_no, point in enumerate(rng.sample(RETRAIN_POINTS, 3)):
        work = tmp_path / f"round-{round_no}"
        work.mkdir()
        reg = FilesystemRegistry(work / "registry")
        data_rng = np.random.default_rng(round_no)
        v1 = reg.register("churn", fit(batch(0, 2000, data_rng)), {}, key="v1")
        reg.promote("churn", v1, key="release-1")
        monkeypatch.setenv("AIOPS_FAULT_POINT", point)
        first, serving = _start(work)
        monkeypatch.delenv("AIOPS_FAULT_POINT")
        second: DaemonProcess | None = None
        try:
            batch(1, 1500, data_rng).to_csv(work / "labelled.csv", index=False)
            serving.concept = 1
            assert first.proc is not None
            first.proc.wait(60)
            assert first.proc.returncode == -9, f"round {round_no}: the daemon was not killed at {point}"
            assert reg.fsck("churn") == [], f"round {round_no}: inconsistent right after SIGKILL at {point}"
            second = DaemonProcess(first.config_path, work).start()
            daemon = second
            resolved = wait_for(daemon.api_resolved, 60, "resolved", daemon.logs)
            [action] = resolved[0]["actions"]
            assert action["state"] == "succeeded" and action["runs"] == 1
            key = action["idempotency_key"]
            keyed = [v for v in reg.versions("churn") if reg.metadata("churn", v)["idempotency_key"] == key]
            assert len(keyed) == 1, f"round {round_no}: {len(keyed)} versions for one key"
            moves = [h for h in reg.state("churn")["history"] if h["key"] == key]
            assert len(moves) == 1 and reg.alias("churn", "champion") == keyed[0]
            assert reg.fsck("churn") == []
            assert daemon.terminate() == 0
        finally:
            serving.stop()
            for proc in (first, second):
                if proc is not None and proc.proc is not None and proc.proc.poll() is None:
                    proc.kill()
