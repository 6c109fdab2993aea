"""Trigger or clear an Airflow DAG run through Airflow's stable REST API, and wait for its result.

Used for pipeline restarts (clear the failed tasks of the latest run, or trigger a fresh run) and as the
external path of a retrain (a DAG that trains, evaluates and promotes). Endpoints (Airflow 2 stable API,
``/api/v1``; set ``api_prefix: /api/v2`` for Airflow 3, which accepts the same calls plus ``logical_date``):

- ``POST {prefix}/dags/{dag}/dagRuns`` with ``dag_run_id`` derived from the idempotency key: a repeat after
  a crash gets ``409 Conflict`` and follows the run that already exists instead of starting a second one;
- ``GET {prefix}/dags/{dag}/dagRuns/{run}`` polled until ``success``/``failed`` or the timeout;
- ``GET {prefix}/dags/{dag}/dagRuns?order_by=-execution_date&limit=1`` and
  ``POST {prefix}/dags/{dag}/clearTaskInstances`` for ``mode: clear``.

The handle (dag_run_id) is saved before the request is sent, so ``resume`` only ever polls.
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path
from typing import Any, ClassVar, Literal

import requests
from pydantic import BaseModel, ConfigDict, Field

from aiops.durations import Duration
from aiops.errors import RemediationError
from aiops.http_outcome import classify_error, classify_status
from aiops.plugins import Remediation
from aiops.redact import redact_url
from aiops.types import ActionContext, IncidentView, Outcome, Plan

FINAL = {"success": True, "failed": False}


def dag_run_id(key: str) -> str:
    """A DAG run id for an idempotency key: readable, Airflow-safe, unique (hash suffix).

    >>> dag_run_id("incident-3-rung-0-attempt-1")
    'aiops__incident-3-rung-0-attempt-1__6654df41'
    """
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", key)[:150]
    return f"aiops__{safe}__{hashlib.sha256(key.encode()).hexdigest()[:8]}"


class AirflowClient:
    """The handful of stable-API calls aiops needs; errors say whether a retry can help."""

    def __init__(
        self,
        base_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        api_prefix: str = "/api/v1",
        timeout: float = 30.0,
    ) -> None:
        self.root = base_url.rstrip("/")
        self.base = self.root + api_prefix
        self.session = requests.Session()
        self.timeout = timeout
        self.v2 = api_prefix.rstrip("/").endswith("v2")
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        elif username is not None and self.v2:
            self._username, self._password = username, password or ""  # Airflow 3: JWT from /auth/token
        elif username is not None:
            self.session.auth = (username, password or "")

    def _login(self) -> None:
        """Airflow 3 (``/api/v2``) takes a bearer JWT issued by ``POST /auth/token`` for a user/password."""
        if "Authorization" in self.session.headers or not hasattr(self, "_username"):
            return
        try:
            resp = self.session.post(
                self.root + "/auth/token",
                json={"username": self._username, "password": self._password},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise self._unreachable(self.root, exc) from exc
        outcome = classify_status(resp.status_code, resp.headers)
        if not outcome.ok:
            raise RemediationError(f"airflow refused the login: {resp.status_code}", recoverable=outcome.retryable)
        self.session.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """The answer to a request; an answer or failure that :mod:`aiops.http_outcome` calls retryable is
        raised as a recoverable error here, so callers only see answers that are final (2xx, 404, 409, ...)."""
        self._login()
        try:
            resp = self.session.request(method, self.base + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise self._unreachable(self.base, exc) from exc
        if classify_status(resp.status_code, resp.headers).retryable:
            raise RemediationError(f"airflow answered {resp.status_code} to {method} {path}", recoverable=True)
        return resp

    @staticmethod
    def _unreachable(url: str, exc: requests.RequestException) -> RemediationError:
        failure = classify_error(exc)
        return RemediationError(
            f"airflow {redact_url(url)} unreachable: {exc.__class__.__name__}", recoverable=failure.retryable
        )

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"dag_run_id": run_id, "conf": conf}
        if self.v2:
            body["logical_date"] = None
        resp = self._call("POST", f"/dags/{dag_id}/dagRuns", json=body)
        if resp.status_code == 409:  # already triggered under this key (a repeat after a crash): follow it
            return self.get_run(dag_id, run_id)
        if resp.status_code >= 300:
            raise RemediationError(f"airflow refused to trigger {dag_id}: {resp.status_code} {resp.text[:200]}")
        return dict(resp.json())

    def get_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        resp = self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
        if resp.status_code == 404:
            return {}
        if resp.status_code >= 300:
            raise RemediationError(f"airflow: cannot read run {run_id} of {dag_id}: {resp.status_code}")
        return dict(resp.json())

    def latest_run(self, dag_id: str) -> dict[str, Any] | None:
        order = "-logical_date" if self.v2 else "-execution_date"
        resp = self._call("GET", f"/dags/{dag_id}/dagRuns", params={"order_by": order, "limit": 1})
        if resp.status_code >= 300:
            raise RemediationError(f"airflow: cannot list runs of {dag_id}: {resp.status_code}")
        runs = resp.json().get("dag_runs") or []
        return dict(runs[0]) if runs else None

    def clear(self, dag_id: str, run_id: str, only_failed: bool) -> int:
        body = {"dry_run": False, "dag_run_id": run_id, "only_failed": only_failed, "reset_dag_runs": True}
        resp = self._call("POST", f"/dags/{dag_id}/clearTaskInstances", json=body)
        if resp.status_code >= 300:
            raise RemediationError(f"airflow refused to clear {dag_id}/{run_id}: {resp.status_code}")
        return len(resp.json().get("task_instances") or [])

    def wait(self, dag_id: str, run_id: str, deadline: float, poll: float) -> dict[str, Any]:
        """Poll the run until it is final or the (monotonic) deadline passes; returns the last view."""
        run: dict[str, Any] = {}
        while True:
            run = self.get_run(dag_id, run_id)
            if run.get("state") in FINAL or time.monotonic() >= deadline:
                return run
            time.sleep(poll)


class AirflowParams(BaseModel):
    """Parameters of the airflow_dag remediation."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="Airflow base URL, e.g. http://airflow:8080")
    dag_id: str
    mode: Literal["trigger", "clear"] = Field("trigger", description="trigger a new run, or clear the latest run")
    only_failed: bool = Field(True, description="clear: only the failed task instances")
    conf: dict[str, Any] = Field(default_factory=dict, description="trigger: the run's conf")
    username: str | None = None
    password: str | None = None
    password_file: str | None = None
    token: str | None = None
    api_prefix: str = "/api/v1"
    timeout: Duration = Field(1800.0, gt=0, description="wait this long for the run to finish, e.g. 30m")
    poll_interval: Duration = Field(5.0, gt=0)
    target: str | None = Field(None, description="blast-radius target (default airflow:<dag_id>)")


class AirflowDagRemediation(Remediation):
    """Trigger or clear an Airflow DAG run via the REST API and wait for it to succeed, with a timeout."""

    Params: ClassVar[type[BaseModel]] = AirflowParams
    params: AirflowParams

    @classmethod
    def test_params(cls) -> list[dict[str, Any]]:
        return [{"url": "http://127.0.0.1:9/api/v1", "dag_id": "retrain"}]

    def client(self) -> AirflowClient:
        p = self.params
        password = p.password
        if p.password_file:
            password = Path(p.password_file).read_text(encoding="utf-8").strip()
        return AirflowClient(
            p.url,
            username=p.username,
            password=password,
            token=p.token,
            api_prefix=p.api_prefix,
            timeout=min(30.0, p.timeout),
        )

    def plan(self, incident: IncidentView) -> Plan:
        p = self.params
        what = "trigger a run of" if p.mode == "trigger" else "clear the latest run of"
        return Plan(
            action="airflow_dag",
            description=f"{what} DAG {p.dag_id} at {redact_url(p.url)} and wait up to {p.timeout:g}s",
            target=p.target or f"airflow:{p.dag_id}",
            details={"dag_id": p.dag_id, "mode": p.mode},
        )

    def execute(self, plan: Plan, ctx: ActionContext) -> Outcome:
        p = self.params
        client = self.client()
        try:
            if p.mode == "trigger":
                run_id = dag_run_id(ctx.idempotency_key)
                ctx.save_handle({"dag_run_id": run_id, "mode": "trigger"})
                conf = {**p.conf, "aiops_incident": ctx.incident.id, "aiops_key": ctx.idempotency_key}
                client.trigger(p.dag_id, run_id, conf)
            else:
                latest = client.latest_run(p.dag_id)
                if latest is None:
                    return Outcome(ok=False, summary=f"DAG {p.dag_id} has no run to clear")
                run_id = str(latest["dag_run_id"])
                ctx.save_handle({"dag_run_id": run_id, "mode": "clear"})
                client.clear(p.dag_id, run_id, p.only_failed)
            return self._wait(client, run_id, ctx)
        except RemediationError as exc:
            return Outcome(ok=False, summary=str(exc), recoverable=exc.recoverable)

    def resume(self, plan: Plan, ctx: ActionContext) -> Outcome | None:
        """Poll the run named in the handle; a trigger that never landed is sent again (same run id)."""
        handle = dict(ctx.handle or {})
        run_id = handle.get("dag_run_id")
        if not isinstance(run_id, str):
            return None
        client = self.client()
        try:
            if not client.get_run(self.params.dag_id, run_id):
                if handle.get("mode") == "trigger":
                    return self.execute(plan, ctx)  # 409-safe: same dag_run_id
                return None
            return self._wait(client, run_id, ctx)
        except RemediationError as exc:
            return Outcome(ok=False, summary=str(exc), recoverable=exc.recoverable)

    def _wait(self, client: AirflowClient, run_id: str, ctx: ActionContext) -> Outcome:
        p = self.params
        budget = min(p.timeout, max(0.0, ctx.deadline - ctx.now()))
        run = client.wait(p.dag_id, run_id, time.monotonic() + budget, p.poll_interval)
        state = run.get("state")
        details = {"dag_id": p.dag_id, "dag_run_id": run_id, "state": state}
        if state == "success":
            return Outcome(ok=True, summary=f"DAG run {run_id} of {p.dag_id} succeeded", details=details)
        if state == "failed":
            return Outcome(ok=False, summary=f"DAG run {run_id} of {p.dag_id} failed", details=details)
        return Outcome(
            ok=False, summary=f"DAG run {run_id} of {p.dag_id} still {state} after {budget:g}s", details=details
        )
