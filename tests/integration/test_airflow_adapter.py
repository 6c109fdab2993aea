"""The ``airflow_dag`` remediation against a local HTTP server implementing the Airflow 2 stable REST API
endpoints it uses (trigger with a dag_run_id, read a run, list runs, clear task instances; basic auth).

A real ``airflow standalone`` was not installable within this session's budget (see docs/remediations.md);
this server follows the documented request and response shapes, including ``409 Conflict`` for a
dag_run_id that already exists, which is what makes a repeated trigger after a crash harmless.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from aiops_remediations.airflow import AirflowDagRemediation, dag_run_id

from tests.unit.test_registry import ctx, incident

AUTH = "Basic " + base64.b64encode(b"admin:pw").decode()


class FakeAirflow:
    """DAG runs finish after ``polls_to_finish`` reads, with ``final_state``."""

    def __init__(self) -> None:
        self.runs: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, Any]] = []
        self.final_state = "success"
        self.polls_to_finish = 2
        self._reads: dict[str, int] = {}
        self.lock = threading.Lock()

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        self.requests.append((method, path, body))
        parts = path.strip("/").split("/")  # api v1 dags {dag} dagRuns [{run}] | clearTaskInstances
        if parts[:3] != ["api", "v1", "dags"] or len(parts) < 5:
            return 404, {"title": "Not Found"}
        dag = parts[3]
        with self.lock:
            if method == "POST" and parts[4] == "dagRuns" and len(parts) == 5:
                run_id = body["dag_run_id"]
                if run_id in self.runs:
                    return 409, {
                        "title": "Conflict",
                        "detail": f"DAGRun with DAG ID: '{dag}' and DAGRun ID: '{run_id}' already exists",
                    }
                self.runs[run_id] = {
                    "dag_id": dag,
                    "dag_run_id": run_id,
                    "state": "queued",
                    "conf": body["conf"],
                    "execution_date": f"2026-01-01T00:00:{len(self.runs):02d}+00:00",
                }
                return 200, self.runs[run_id]
            if method == "GET" and parts[4] == "dagRuns" and len(parts) == 6:
                run = self.runs.get(parts[5])
                if run is None:
                    return 404, {"title": "DAGRun not found"}
                self._reads[parts[5]] = self._reads.get(parts[5], 0) + 1
                if run["state"] in ("queued", "running"):
                    run["state"] = "running" if self._reads[parts[5]] < self.polls_to_finish else self.final_state
                return 200, run
            if method == "GET" and parts[4] == "dagRuns":
                assert query.get("order_by") == ["-execution_date"]
                runs = sorted(self.runs.values(), key=lambda r: r["execution_date"], reverse=True)
                limit = int(query.get("limit", ["100"])[0])
                return 200, {"dag_runs": runs[:limit], "total_entries": len(runs)}
            if method == "POST" and parts[4] == "clearTaskInstances":
                run = self.runs[body["dag_run_id"]]
                assert body["dry_run"] is False and body["reset_dag_runs"] is True
                run["state"] = "queued"
                self._reads[run["dag_run_id"]] = 0
                return 200, {"task_instances": [{"task_id": "train", "dag_run_id": run["dag_run_id"]}]}
        return 404, {"title": "Not Found"}


@pytest.fixture
def airflow() -> Iterator[tuple[FakeAirflow, str]]:
    fake = FakeAirflow()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            if self.headers.get("Authorization") != AUTH:
                self._send(401, {"title": "Unauthorized"})
                return
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            status, data = fake.handle(self.command, url.path, parse_qs(url.query), body)
            self._send(status, data)

        def _send(self, status: int, data: Any) -> None:
            raw = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _remediation(url: str, **extra: Any) -> AirflowDagRemediation:
    params: dict[str, Any] = {"timeout": 5, **extra}
    return AirflowDagRemediation(
        url=url, dag_id="retrain_churn", username="admin", password="pw", poll_interval=0.01, **params
    )


def test_trigger_waits_for_success_and_a_repeat_follows_the_same_run(airflow: tuple[FakeAirflow, str]) -> None:
    fake, url = airflow
    remediation = _remediation(url, conf={"window": "7d"})
    handles: list[dict[str, Any]] = []
    context = ctx("incident-1-rung-0-attempt-1")
    context.save_handle = lambda h: handles.append(dict(h))
    out = remediation.execute(remediation.plan(incident()), context)
    assert out.ok, out.summary
    run_id = dag_run_id("incident-1-rung-0-attempt-1")
    assert handles == [{"dag_run_id": run_id, "mode": "trigger"}]
    assert fake.runs[run_id]["conf"] == {"window": "7d", "aiops_incident": 1, "aiops_key": context.idempotency_key}
    # the daemon died after the POST: resume polls the run, a re-execute gets 409 and follows it
    again = remediation.execute(remediation.plan(incident()), ctx("incident-1-rung-0-attempt-1"))
    resumed = remediation.resume(remediation.plan(incident()), ctx("x", handle=handles[0]))
    assert again.ok and resumed is not None and resumed.ok
    assert len(fake.runs) == 1, "a DAG run was triggered twice under one key"
    assert [r[0] for r in fake.requests].count("POST") == 2  # the second POST was answered 409


def test_failed_run_and_timeout_are_failures(airflow: tuple[FakeAirflow, str]) -> None:
    fake, url = airflow
    fake.final_state = "failed"
    out = _remediation(url).execute(_remediation(url).plan(incident()), ctx("k-failed"))
    assert not out.ok and "failed" in out.summary
    fake.polls_to_finish = 10_000
    slow = _remediation(url, timeout=0.3)
    out = slow.execute(slow.plan(incident()), ctx("k-slow"))
    assert not out.ok and "still running" in out.summary


def test_clear_restarts_the_latest_run(airflow: tuple[FakeAirflow, str]) -> None:
    fake, url = airflow
    fake.final_state = "failed"
    trigger = _remediation(url)
    assert not trigger.execute(trigger.plan(incident()), ctx("first")).ok
    fake.final_state = "success"
    clear = _remediation(url, mode="clear")
    assert "clear the latest run" in clear.plan(incident()).description
    out = clear.execute(clear.plan(incident()), ctx("clear-1"))
    assert out.ok and out.details["dag_run_id"] == dag_run_id("first")
    assert any(r[1].endswith("/clearTaskInstances") for r in fake.requests)


def test_bad_credentials_are_not_retried(airflow: tuple[FakeAirflow, str]) -> None:
    _fake, url = airflow
    remediation = AirflowDagRemediation(url=url, dag_id="d", username="admin", password="wrong", timeout=1)
    out = remediation.execute(remediation.plan(incident()), ctx("k"))
    assert not out.ok and "401" in out.summary and not out.recoverable
    assert "wrong" not in out.summary
