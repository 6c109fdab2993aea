"""The ``airflow_dag`` remediation against a real ``airflow standalone`` (Apache Airflow 3, SQLite,
loopback, Airflow 3's ``/api/v2`` with a JWT from ``/auth/token``).

Airflow lives in its own environment (``scripts/airflow-env.sh`` creates ``.airflow-venv``; about 3 minutes
and 130 packages). Without it this module fails with that instruction; the default run deselects it
(``-m "not airflow"``) and .ci/run runs it in its own stage. Starting Airflow takes about a minute and each
DAG run 10-20 s on a small machine, hence ``slow``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests
from aiops_remediations.airflow import AirflowDagRemediation, dag_run_id

from tests.servers import free_port
from tests.unit.test_registry import ctx, incident

pytestmark = [pytest.mark.slow, pytest.mark.airflow]

VENV = Path(__file__).resolve().parents[2] / ".airflow-venv"

DAG = """
import pendulum
from pathlib import Path
from airflow.sdk import dag, task


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False, is_paused_upon_creation=False)
def aiops_pipeline():
    @task
    def work(**context):
        conf = context["dag_run"].conf or {}
        with Path(conf["out"]).open("a") as f:
            f.write(context["dag_run"].run_id + "\\n")
        marker = Path(conf["out"] + ".failed-once")
        if conf.get("fail_once") and not marker.exists():
            marker.write_text("1")
            raise RuntimeError("first attempt fails (test)")

    work()


aiops_pipeline()
"""


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    if not (VENV / "bin" / "airflow").exists():
        pytest.fail("needs a real Airflow: run scripts/airflow-env.sh (creates .airflow-venv)", pytrace=False)
    home = tmp_path_factory.mktemp("airflow")
    (home / "dags").mkdir()
    (home / "dags" / "aiops_pipeline.py").write_text(DAG)
    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{VENV / 'bin'}:{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "aiops:admin",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
    }
    log = home / "standalone.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(VENV / "bin" / "airflow"), "standalone"],
            env=env,
            cwd=home,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, f"airflow standalone exited:\n{log.read_text()[-3000:]}"
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{url}/api/v2/version", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, f"airflow not up in 240s:\n{log.read_text()[-3000:]}"
            time.sleep(2)
        password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())["aiops"]
        _wait_for_dag(url, password)
        yield url, password, home
    finally:
        family = [proc, *_children(proc.pid)]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        for p in family:
            with contextlib.suppress(psutil.Error, ProcessLookupError):
                (p if isinstance(p, psutil.Process) else psutil.Process(p.pid)).terminate()
        time.sleep(3)
        for p in family:
            with contextlib.suppress(psutil.Error, ProcessLookupError):
                (p if isinstance(p, psutil.Process) else psutil.Process(p.pid)).kill()
        proc.wait(10)


def _children(pid: int) -> list[psutil.Process]:
    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.Error:
        return []


def _wait_for_dag(url: str, password: str) -> None:
    token = requests.post(f"{url}/auth/token", json={"username": "aiops", "password": password}, timeout=10).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        resp = requests.get(f"{url}/api/v2/dags/aiops_pipeline", headers=headers, timeout=5)
        if resp.status_code == 200 and not resp.json().get("is_paused"):
            return
        time.sleep(2)
    raise AssertionError("the test DAG was not parsed within 120s")


def _remediation(url: str, password: str, **extra: object) -> AirflowDagRemediation:
    params: dict[str, object] = {"poll_interval": 1, "timeout": 180, **extra}
    return AirflowDagRemediation(
        url=url, api_prefix="/api/v2", dag_id="aiops_pipeline", username="aiops", password=password, **params
    )


def test_trigger_runs_the_dag_once_per_key(airflow: tuple[str, str, Path]) -> None:
    url, password, home = airflow
    out = home / "runs.txt"
    remediation = _remediation(url, password, conf={"out": str(out)})
    key = "incident-1-rung-0-attempt-1"
    first = remediation.execute(remediation.plan(incident()), ctx(key))
    assert first.ok, first.summary
    again = remediation.execute(remediation.plan(incident()), ctx(key))  # a repeat after a crash
    resumed = remediation.resume(remediation.plan(incident()), ctx(key, handle={"dag_run_id": dag_run_id(key)}))
    assert again.ok and resumed is not None and resumed.ok
    assert out.read_text().split() == [dag_run_id(key)], "the DAG ran more than once for one key"


def test_failed_run_is_a_failure_and_clear_reruns_it(airflow: tuple[str, str, Path]) -> None:
    url, password, home = airflow
    out = home / "flaky.txt"
    trigger = _remediation(url, password, conf={"out": str(out), "fail_once": True})
    failed = trigger.execute(trigger.plan(incident()), ctx("incident-2-rung-0-attempt-1"))
    assert not failed.ok and "failed" in failed.summary
    clear = _remediation(url, password, mode="clear")
    healed = clear.execute(clear.plan(incident()), ctx("incident-2-rung-1-attempt-2"))
    assert healed.ok, healed.summary
    assert healed.details["dag_run_id"] == dag_run_id("incident-2-rung-0-attempt-1")
    assert len(out.read_text().split()) == 2
