"""Restart a pipeline process (argv, no shell) and wait until a readiness probe says it is up.

Why not just ``command: [systemctl, restart, x]``: for a process aiops itself supervises (a batch scorer,
a feature pipeline) there is no service manager to ask; and "restarted" is not "ready". This remediation
stops the process named in ``pidfile`` (only if its command line still matches, so a recycled pid is never
killed), starts ``argv`` detached in its own session, writes the pidfile atomically, and polls the probe
(``ready_url`` answering 2xx, or ``ready_file`` existing and newer than the start) until ``ready_timeout``.

For Kubernetes and systemd use the ``command`` remediation with ``kubectl rollout restart`` /
``systemctl restart`` (see docs/remediations.md).

Crash safety: the handle (new pid and its create time) is saved right after the start; ``resume`` only
probes that process. A crash between the start and the save leaves a pidfile naming the new process, which
``resume`` adopts when its start time is after the attempt began; otherwise the outcome is unknown (None):
the executor records "interrupted" and does not start a second copy.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, ClassVar

import psutil
import requests
from pydantic import BaseModel, ConfigDict, Field, model_validator

from aiops.config import environment
from aiops.durations import Duration
from aiops.plugins import Remediation
from aiops.types import ActionContext, IncidentView, Outcome, Plan


class RestartParams(BaseModel):
    """Parameters of the restart remediation."""

    model_config = ConfigDict(extra="forbid")

    argv: list[str] = Field(min_length=1, description="the process to (re)start, never run through a shell")
    pidfile: str = Field(description="where the running process's pid is kept")
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict, description="extra environment (PATH/HOME/LANG kept)")
    log_file: str | None = Field(None, description="stdout/stderr of the process (default: pidfile + .log)")
    stop_timeout: Duration = Field(10.0, gt=0, description="SIGTERM, then SIGKILL after this long")
    ready_url: str | None = Field(None, description="readiness: this URL answers 2xx")
    ready_file: str | None = Field(None, description="readiness: this file appears (newer than the start)")
    ready_timeout: Duration = Field(60.0, gt=0)
    target: str | None = Field(None, description="blast-radius target (default process:<argv[0]>)")

    @model_validator(mode="after")
    def _probe(self) -> RestartParams:
        if not self.ready_url and not self.ready_file:
            raise ValueError("give a readiness probe: 'ready_url' or 'ready_file' (started is not ready)")
        return self


class RestartRemediation(Remediation):
    """Restart a process from argv (stop the old one by pidfile) and wait for its readiness probe."""

    Params: ClassVar[type[BaseModel]] = RestartParams
    params: RestartParams

    @classmethod
    def test_params(cls) -> list[dict[str, Any]]:
        return [{"argv": ["true"], "pidfile": "server.pid", "ready_file": "server.ready"}]

    def plan(self, incident: IncidentView) -> Plan:
        p = self.params
        probe = p.ready_url or p.ready_file
        return Plan(
            action="restart",
            description=f"restart {' '.join(p.argv)} (pidfile {p.pidfile}); ready when {probe} within "
            f"{p.ready_timeout:g}s",
            target=p.target or f"process:{p.argv[0]}",
            details={"argv": list(p.argv), "pidfile": p.pidfile},
        )

    def execute(self, plan: Plan, ctx: ActionContext) -> Outcome:
        p = self.params
        began = time.time()
        ctx.save_handle({"phase": "starting", "began": began})
        self._stop_old()
        log_path = Path(p.log_file or f"{p.pidfile}.log")
        env = environment.inherited(("PATH", "HOME", "LANG"))
        env.update(p.env)
        env["AIOPS_IDEMPOTENCY_KEY"] = ctx.idempotency_key
        try:
            with log_path.open("ab") as log:
                proc = subprocess.Popen(
                    p.argv,
                    cwd=p.cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
        except OSError as exc:
            return Outcome(ok=False, summary=f"cannot start {p.argv[0]}: {exc}", recoverable=False)
        _write_pidfile(Path(p.pidfile), proc.pid)
        create_time = psutil.Process(proc.pid).create_time()
        ctx.save_handle({"phase": "started", "pid": proc.pid, "create_time": create_time, "began": began})
        return self._await_ready(proc.pid, create_time, began)

    def resume(self, plan: Plan, ctx: ActionContext) -> Outcome | None:
        handle = dict(ctx.handle or {})
        began = float(handle.get("began") or 0.0)
        pid, create_time = handle.get("pid"), handle.get("create_time")
        if not isinstance(pid, int):  # crashed around the start: adopt the pidfile's process if it is ours
            pid = _read_pid(Path(self.params.pidfile))
            if pid is None:
                return None
            try:
                create_time = psutil.Process(pid).create_time()
            except psutil.Error:
                return None
            if create_time < began:
                return None  # the old process: whether a new one was started is unknown
        return self._await_ready(pid, float(create_time or 0.0), began)

    # ------------------------------------------------------------------ helpers

    def _stop_old(self) -> None:
        pid = _read_pid(Path(self.params.pidfile))
        if pid is None:
            return
        try:
            proc = psutil.Process(pid)
            if Path(self.params.argv[0]).name not in " ".join(proc.cmdline()):
                return  # pid recycled by something else: never kill a stranger
        except psutil.Error:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        try:
            proc.wait(self.params.stop_timeout)
        except psutil.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(psutil.Error):
                proc.wait(5)
        except psutil.Error:
            pass

    def _await_ready(self, pid: int, create_time: float, began: float) -> Outcome:
        p = self.params
        end = time.monotonic() + p.ready_timeout
        details = {"pid": pid, "pidfile": p.pidfile}
        while True:
            if not _alive(pid, create_time):
                return Outcome(ok=False, summary=f"{p.argv[0]} (pid {pid}) exited before it was ready", details=details)
            if self._ready(began):
                return Outcome(ok=True, summary=f"{p.argv[0]} restarted (pid {pid}) and ready", details=details)
            if time.monotonic() >= end:
                return Outcome(
                    ok=False, summary=f"{p.argv[0]} (pid {pid}) not ready within {p.ready_timeout:g}s", details=details
                )
            time.sleep(0.1)

    def _ready(self, began: float) -> bool:
        p = self.params
        if p.ready_url:
            try:
                if not (200 <= requests.get(p.ready_url, timeout=2).status_code < 300):
                    return False
            except requests.RequestException:
                return False
        if p.ready_file:
            try:
                return Path(p.ready_file).stat().st_mtime >= began - 1.0
            except OSError:
                return False
        return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _write_pidfile(path: Path, pid: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(f"{pid}\n")
    os.replace(tmp, path)


def _alive(pid: int, create_time: float) -> bool:
    try:
        proc = psutil.Process(pid)
        if create_time and abs(proc.create_time() - create_time) > 0.01:
            return False
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
