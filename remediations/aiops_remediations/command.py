"""Run a command (argv list, never a shell) under a detached supervisor, exactly once per idempotency key."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import psutil
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aiops.config import environment
from aiops.durations import Duration
from aiops.plugins import Remediation
from aiops.redact import redact
from aiops.types import ActionContext, IncidentView, Outcome, Plan
from aiops_remediations.templating import ValueRules, placeholder_name, placeholders, render_template

DEFAULT_ENV_ALLOW = ("PATH", "HOME", "LANG")
KILL_GRACE = 3.0

def status_file_name(key: str) -> str:
    """A file name for an idempotency key: readable, filesystem-safe and still unique (hash suffix).

    >>> status_file_name("check/disk:incident 3#1")
    'check_disk_incident_3_1-cb2f4a6092.json'
    """
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("._")[:80] or "key"
    return f"{safe}-{hashlib.sha256(key.encode()).hexdigest()[:10]}.json"


class CommandParams(BaseModel):
    """Parameters of the command remediation."""

    model_config = ConfigDict(extra="forbid")

    argv: list[str] = Field(
        min_length=1,
        description="program and arguments, never run through a shell; placeholders {incident.check}, "
        "{incident.id}, {incident.fingerprint}, {label.NAME} are substituted inside each argument, and each "
        "value must pass the rules below (no leading '-', no control characters, not empty)",
    )
    allow_dash: list[str] = Field(
        default_factory=list,
        description="placeholders whose values may start with '-' (e.g. [offset] for {label.offset}); "
        "otherwise such a value holds the action",
    )
    match: dict[str, str] = Field(
        default_factory=dict,
        description="placeholder -> regular expression the whole value must match, e.g. "
        "{namespace: '[a-z0-9-]+'}; a value that does not holds the action",
    )
    timeout: Duration = Field(60.0, gt=0, description="kill the command's process group after this long, e.g. 60s")
    env: dict[str, str] = Field(default_factory=dict, description="extra environment variables for the command")
    env_allow: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ENV_ALLOW),
        description="variables passed through from the daemon's environment; all others are dropped",
    )
    cwd: str | None = Field(None, description="working directory of the command")
    target: str | None = Field(
        None, description="what the command touches, for the blast-radius budget (default command:<argv[0]>)"
    )
    success_exit_codes: list[int] = Field(
        default_factory=lambda: [0], min_length=1, description="exit codes that count as success"
    )
    state_dir: str | None = Field(
        None,
        description="where status files live (default: actions/ in the daemon's state_dir, else ./.aiops/actions)",
    )

    @field_validator("argv")
    @classmethod
    def _argv(cls, value: list[str]) -> list[str]:
        if not value[0].strip():
            raise ValueError("argv[0] (the program) must not be empty")
        return value

    @model_validator(mode="after")
    def _rules_name_placeholders_of_argv(self) -> CommandParams:
        used = placeholders(self.argv)
        for field_name, names in (("allow_dash", list(self.allow_dash)), ("match", list(self.match))):
            for name in names:
                if placeholder_name(name) not in used:
                    known = ", ".join(used) or "none"
                    raise ValueError(f"{field_name}: {name!r} is not a placeholder of argv (argv uses: {known})")
        ValueRules.from_config(self.allow_dash, self.match)  # a bad pattern is a config error, not a plan error
        return self


class CommandRemediation(Remediation):
    """Run a command (argv, no shell) under a detached supervisor, once per idempotency key, with a timeout.

    Why this shape: a remediation must survive the daemon crashing mid-run without running twice. The
    command runs under ``python -m aiops_remediations.supervise`` in its own session; the supervisor writes
    the exit code and the last 4 KiB of stdout/stderr atomically to a status file named after the
    idempotency key, and refuses to run again if that file (or its claim) exists. The resume handle (pid,
    create time, status file) is saved before the command is allowed to start, so a restarted daemon either
    reads the result, waits for the still-running supervisor, or reports "unknown" — never re-runs.
    The command sees only ``env_allow`` variables from the daemon's environment plus ``env`` and
    ``AIOPS_IDEMPOTENCY_KEY``/``AIOPS_INCIDENT_*``, so daemon secrets do not leak into it.
    """

    Params: ClassVar[type[BaseModel]] = CommandParams

    @classmethod
    def test_params(cls) -> list[dict[str, Any]]:
        return [{"argv": ["true"]}]

    def __init__(
        self,
        *,
        argv: list[str],
        timeout: float | str = 60.0,
        env: Mapping[str, str] | None = None,
        env_allow: list[str] | None = None,
        cwd: str | None = None,
        target: str | None = None,
        success_exit_codes: list[int] | None = None,
        state_dir: str | None = None,
        allow_dash: list[str] | None = None,
        match: Mapping[str, str] | None = None,
    ) -> None:
        self.params: CommandParams = self.validate_params(
            {
                "argv": list(argv),
                "timeout": timeout,
                "env": dict(env or {}),
                "env_allow": list(DEFAULT_ENV_ALLOW) if env_allow is None else list(env_allow),
                "cwd": cwd,
                "target": target,
                "success_exit_codes": [0] if success_exit_codes is None else list(success_exit_codes),
                "state_dir": state_dir,
                "allow_dash": list(allow_dash or []),
                "match": dict(match or {}),
            }
        )
        self.rules = ValueRules.from_config(self.params.allow_dash, self.params.match)

    # ------------------------------------------------------------------ plan

    def plan(self, incident: IncidentView) -> Plan:
        """Raises PlanRefused when a templated value fails its rules: the engine then holds the action."""
        argv = [render_template(arg, incident, self.rules) for arg in self.params.argv]
        target = render_template(self.params.target or f"command:{self.params.argv[0]}", incident)
        return Plan(
            action="command",
            description=self._redact(f"run {shlex.join(argv)} (timeout {self.params.timeout:g}s)"),
            target=target,
            details={
                "argv": argv,
                "timeout": self.params.timeout,
                "cwd": self.params.cwd,
                "env": sorted(self.params.env),
                "success_exit_codes": list(self.params.success_exit_codes),
            },
        )

    # ------------------------------------------------------------------ execute / resume

    def execute(self, plan: Plan, ctx: ActionContext) -> Outcome:
        argv = self._argv(plan, ctx.incident)
        try:
            status = self._state_dir() / status_file_name(ctx.idempotency_key)
        except OSError as exc:
            return Outcome(ok=False, summary=f"state dir unusable: {exc}", recoverable=True)
        done = _read_json(status)
        if done is not None:
            return self._outcome(done, status, reused=True)
        budget = ctx.deadline - ctx.now()
        owner = _claim_owner(status)
        if owner is not None:  # another execution under this key is running (or ran and died)
            return self._follow_claim(owner, status, ctx, budget)
        if Path(f"{status}.claim").exists():  # claimed, no result, owner gone: it may have acted
            return _interrupted(status)
        if budget <= 0:
            return Outcome(ok=False, summary="deadline passed before start", recoverable=True)

        timeout = float(plan.details.get("timeout", self.params.timeout))
        cwd = plan.details.get("cwd", self.params.cwd)
        cmd = [
            sys.executable,
            "-m",
            "aiops_remediations.supervise",
            "--status",
            str(status),
            "--timeout",
            repr(timeout),
            "--gate",
            *(["--cwd", str(cwd)] if cwd else []),
            "--",
            *argv,
        ]
        try:
            with open(f"{status}.supervisor.log", "ab") as log:
                proc = subprocess.Popen(
                    cmd,
                    cwd=status.parent,
                    env=self._child_env(ctx),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    start_new_session=True,  # survives the daemon; its own process group for a clean kill
                )
        except OSError as exc:  # nothing started, so a retry under the same key is safe
            return Outcome(ok=False, summary=f"cannot start the supervisor: {exc}", recoverable=True)
        try:
            ctx.save_handle(_handle(proc.pid, status))
        except BaseException:
            # No handle, no run: closing stdin without "go" makes the supervisor exit without running.
            with contextlib.suppress(OSError):
                if proc.stdin is not None:
                    proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            raise
        try:
            if proc.stdin is not None:
                proc.stdin.write(b"go\n")
                proc.stdin.close()
        except OSError:
            pass  # supervisor already gone; reported below as "exited without a result"
        try:
            outcome = self._await(
                status,
                alive=lambda: proc.poll() is None,
                pid=proc.pid,
                budget=budget,
            )
        finally:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=KILL_GRACE)  # reap; it has written its status or been killed
        if outcome is not None:
            return outcome
        owner = _claim_owner(status)
        if owner is not None:  # a concurrent supervisor won the claim: follow it
            return self._follow_claim(owner, status, ctx, budget)
        started = Path(f"{status}.claim").exists()
        log_tail = _tail_text(Path(f"{status}.supervisor.log"))
        return Outcome(
            ok=False,
            summary="supervisor exited without a result",
            details={"status_file": str(status), "supervisor_log": self._redact(log_tail)},
            # Safe to retry under the same key only if the command never started (no claim was made).
            recoverable=not started,
        )

    def resume(self, plan: Plan, ctx: ActionContext) -> Outcome | None:
        handle = dict(ctx.handle or {})
        status = (
            Path(handle["status_file"])
            if handle.get("status_file")
            else (self._state_dir() / status_file_name(ctx.idempotency_key))
        )
        done = _read_json(status)
        if done is not None:
            return self._outcome(done, status, reused=True)
        budget = ctx.deadline - ctx.now()
        pid, create_time = handle.get("supervisor_pid"), handle.get("create_time")
        proc = _same_process(pid, create_time) or _claim_owner(status)
        outcome: Outcome | None = None
        if proc is not None:
            found = proc
            outcome = self._await(status, alive=lambda: _running(found), pid=found.pid, budget=budget)
        if outcome is not None:
            return outcome
        done = _read_json(status)  # it may have finished between the looks
        if done is not None:
            return self._outcome(done, status, reused=True)
        if not Path(f"{status}.claim").exists():
            # The supervisor is gone and never claimed the key, so the command never started (the daemon
            # died after saving the handle, before "go"): nothing to be unsure about, run it now.
            return self.execute(plan, ctx)
        return None

    # ------------------------------------------------------------------ helpers

    def _follow_claim(self, owner: psutil.Process, status: Path, ctx: ActionContext, budget: float) -> Outcome:
        ctx.save_handle(_handle(owner.pid, status))
        outcome = self._await(status, alive=lambda: _running(owner), pid=owner.pid, budget=budget)
        return outcome if outcome is not None else _interrupted(status)

    def _await(self, status: Path, *, alive: Callable[[], bool], pid: int, budget: float) -> Outcome | None:
        """Poll for the status file until it appears, the supervisor dies (None) or the budget runs out."""
        end = time.monotonic() + max(0.0, budget)  # monotonic: immune to a fake or stepped ctx clock
        delay = 0.01
        while True:
            done = _read_json(status)
            if done is not None:
                return self._outcome(done, status)
            if not alive():
                done = _read_json(status)
                return self._outcome(done, status) if done is not None else None
            if time.monotonic() >= end:
                return self._kill(status, pid)
            time.sleep(min(delay, max(0.0, end - time.monotonic())) or 0.001)
            delay = min(delay * 1.5, 0.2)

    def _kill(self, status: Path, pid: int) -> Outcome:
        """Deadline passed: SIGTERM the supervisor (it kills the command and records it), then SIGKILL."""
        _killpg(pid, signal.SIGTERM)
        end = time.monotonic() + KILL_GRACE
        done = _read_json(status)
        while done is None and time.monotonic() < end:
            time.sleep(0.05)
            done = _read_json(status)
        _killpg(pid, signal.SIGKILL)
        details: dict[str, Any] = {"reason": "deadline", "status_file": str(status)}
        if done is not None:
            details.update(self._outcome(done, status).details)
        return Outcome(ok=False, summary="timed out", details=details, recoverable=False)

    def _outcome(self, data: Mapping[str, Any], status: Path, reused: bool = False) -> Outcome:
        exit_code = data.get("exit_code")
        timed_out = bool(data.get("timed_out"))
        ok = not timed_out and exit_code in self.params.success_exit_codes
        if timed_out:
            summary = str(data.get("error") or f"timed out after {self.params.timeout:g}s, killed")
        elif data.get("error"):
            summary = f"could not start: {data['error']}"
        else:
            summary = f"exit code {exit_code}"
            if not ok:
                summary += f" (success: {', '.join(map(str, self.params.success_exit_codes))})"
        started, finished = data.get("started_at"), data.get("finished_at")
        duration = (
            float(finished) - float(started)
            if isinstance(started, int | float) and isinstance(finished, int | float)
            else None
        )
        details = {
            "exit_code": exit_code,
            "timed_out": timed_out,
            "stdout_tail": self._redact(str(data.get("stdout_tail") or "")),
            "stderr_tail": self._redact(str(data.get("stderr_tail") or "")),
            "started_at": started,
            "finished_at": finished,
            "duration": duration,
            "status_file": str(status),
            "reused": reused,
        }
        # A finished run is never recoverable under the same key: re-executing it reads the same status.
        return Outcome(ok=ok, summary=self._redact(summary), details=details, recoverable=False)

    def _argv(self, plan: Plan, incident: IncidentView) -> list[str]:
        argv = plan.details.get("argv")
        if isinstance(argv, list | tuple) and argv and all(isinstance(a, str) for a in argv):
            return [str(a) for a in argv]
        return [render_template(arg, incident, self.rules) for arg in self.params.argv]

    def _state_dir(self) -> Path:
        if self.params.state_dir:
            path = Path(self.params.state_dir)
        elif self.context is not None:  # the daemon's state directory: status files outlive a restart
            path = self.context.state_dir / "actions"
        else:
            path = Path(".aiops") / "actions"
        path = path.resolve()
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def _child_env(self, ctx: ActionContext) -> dict[str, str]:
        env = environment.inherited(self.params.env_allow)
        env.update(self.params.env)
        inc = ctx.incident
        env.update(
            {
                "AIOPS_IDEMPOTENCY_KEY": ctx.idempotency_key,
                "AIOPS_INCIDENT_ID": str(inc.id),
                "AIOPS_INCIDENT_CHECK": inc.check,
                "AIOPS_INCIDENT_FINGERPRINT": inc.fingerprint,
                "AIOPS_INCIDENT_SEVERITY": str(inc.severity),
            }
        )
        return env

    def _redact(self, text: str) -> str:
        return redact(text, self.params.env.values())


def _handle(pid: int, status: Path) -> dict[str, Any]:
    try:
        create_time: float | None = psutil.Process(pid).create_time()
    except psutil.Error:
        create_time = None
    return {"supervisor_pid": pid, "create_time": create_time, "status_file": str(status)}


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _same_process(pid: Any, create_time: Any) -> psutil.Process | None:
    """The process with this pid if it is still the one that was started (same create time) and alive."""
    if not isinstance(pid, int) or not isinstance(create_time, int | float):
        return None
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - float(create_time)) > 0.01:
            return None  # pid reused by another process
    except psutil.Error:
        return None
    return proc if _running(proc) else None


def _claim_owner(status: Path) -> psutil.Process | None:
    """The live supervisor that claimed this status file, identified by pid *and* its command line."""
    claim = _read_json(Path(f"{status}.claim"))
    pid = claim.get("pid") if claim else None
    if not isinstance(pid, int):
        return None
    try:
        proc = psutil.Process(pid)
        if str(status) not in proc.cmdline():
            return None
    except psutil.Error:
        return None
    return proc if _running(proc) else None


def _interrupted(status: Path) -> Outcome:
    return Outcome(
        ok=False,
        summary="interrupted: an earlier run under this key ended without a result; not re-running it",
        details={"status_file": str(status)},
        recoverable=False,
    )


def _killpg(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _tail_text(path: Path, limit: int = 2000) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode("utf-8", errors="replace")
