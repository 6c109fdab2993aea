"""Retraining on a real Dask and a real Ray cluster, with the daemon SIGKILLed while the job runs.

The daemon submits the training job under the action's idempotency key and stores the job's handle in the
ledger before it waits. Killed mid-job and restarted, it must adopt the job it started (the trainer runs
once), take the champion/challenger decision itself and promote exactly once.
"""

from __future__ import annotations

import shutil
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

from aiops.registry import FilesystemRegistry
from tests.e2e.daemon import DaemonProcess, wait_for
from tests.e2e.test_ml_remediation import FEATURES, batch
from tests.servers import DaskCluster, RayCluster, find_binary

pytestmark = pytest.mark.slow

TRAINER = '''
import time
from sklearn.base import clone


def train(x, y, champion):
    with open({log!r}, "a") as out:
        out.write("trained\\n")
    time.sleep(8)  # long enough for the test to kill the daemon while the job runs
    return clone(champion).fit(x, y)
'''

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
      verify: {{settle: 0.5s, window: 60s}}
      actions:
        - type: retrain
          registry: "{work}/registry"
          model: churn
          data: {{path: "{work}/labelled.csv", target: y, features: [x0, x1, x2]}}
          metric: accuracy
          min_improvement: 0.05
          trainer: "slowtrainer:train"
          executor: {{type: {executor}, address: "{address}", python: "{python}", poll_interval: 0.2s}}
          timeout: 120s
"""


class QualityFeed:
    """Writes the serving accuracy the check reads: bad until the champion moves, good after."""

    def __init__(self, work: Path, registry: FilesystemRegistry) -> None:
        self.path = work / "quality.csv"
        self.path.write_text("timestamp,accuracy\n")
        self.registry = registry
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self.path.open("a") as out:
            while not self._stop.wait(0.2):
                healed = self.registry.alias("churn", "champion") != "1"
                out.write(f"{time.time():.4f},{0.95 if healed else 0.5}\n")
                out.flush()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "slowtrainer.py").write_text(TRAINER.format(log=str(tmp_path / "trainer.log")))
    yield tmp_path


@pytest.fixture
def dask_cluster(work: Path) -> Iterator[DaskCluster]:
    cluster = DaskCluster(work, env={"PYTHONPATH": str(work)}).start(sys.executable)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def ray_cluster(work: Path) -> Iterator[RayCluster]:
    ray = find_binary("ray", str(Path(sys.executable).with_name("ray")))
    cluster = RayCluster(work, env={"PYTHONPATH": str(work)})
    try:
        yield cluster.start(ray)
    finally:
        cluster.stop(ray)


def _killed_mid_job_then_adopted(work: Path, executor: str, address: str) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    reg = FilesystemRegistry(work / "registry")
    v1 = reg.register("churn", LogisticRegression().fit(*_xy(batch(0, 1500, rng))), {}, key="v1")
    reg.promote("churn", v1, key="release-1")
    batch(1, 1500, rng).to_csv(work / "labelled.csv", index=False)  # the concept moved: retraining helps
    config = work / "aiops.yaml"
    config.write_text(CONFIG.format(work=work, executor=executor, address=address, python=sys.executable))
    feed = QualityFeed(work, reg)
    trainer_log = work / "trainer.log"
    daemon = DaemonProcess(config, work).start()
    try:
        wait_for(lambda: trainer_log.exists(), 90, f"the training job to start on {executor}", daemon.logs)
        daemon.kill()  # mid-job: the handle is in the ledger, the job runs on
        assert reg.alias("churn", "champion") == "1"
        daemon = DaemonProcess(config, work, port=daemon.port).start()
        resolved = wait_for(daemon.api_resolved, 120, "a resolved incident", daemon.logs)
        assert daemon.terminate() == 0
    finally:
        feed.stop()
        if daemon.proc and daemon.proc.poll() is None:
            daemon.kill()
    assert trainer_log.read_text().splitlines() == ["trained"], "the job was adopted, not run again"
    state = reg.state("churn")
    assert state["aliases"] == {"champion": "2", "previous": "1"}
    assert [h["op"] for h in state["history"]] == ["promote", "promote"], "promoted exactly once"
    assert reg.fsck("churn") == []
    [action] = resolved[0]["actions"]
    assert action["state"] == "succeeded" and "challenger won" in action["outcome"]["summary"]
    return dict(action)


def _xy(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    return frame[FEATURES], frame["y"]


def test_retrain_on_dask_survives_a_daemon_kill(work: Path, dask_cluster: DaskCluster) -> None:
    _killed_mid_job_then_adopted(work, "dask", dask_cluster.address)


def test_retrain_on_ray_survives_a_daemon_kill(work: Path, ray_cluster: RayCluster) -> None:
    assert shutil.which("ray") or Path(sys.executable).with_name("ray").exists()
    _killed_mid_job_then_adopted(work, "ray", ray_cluster.address)
