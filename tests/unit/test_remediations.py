"""The command and webhook remediations with real subprocesses and a real local HTTP server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import pytest
from aiops_remediations.command import CommandRemediation, status_file_name
from aiops_remediations.webhook import WebhookRemediation

from aiops.errors import RemediationError
from aiops.plugins import REMEDIATIONS, PluginContext, Remediation, build, load
from aiops.signing import verify
from aiops.types import ActionContext, IncidentState, IncidentView, Outcome, Severity

PY = sys.executable


def incident(**labels: str) -> IncidentView:
    return IncidentView(
        id=7,
        fingerprint="fp0123",
        check="etl-stalled",
        state=IncidentState.FIRING,
        severity=Severity.CRITICAL,
        summary="etl stalled",
        labels=labels or {"service": "etl"},
        opened_at=1700000000.0,
    )


class Ctx:
    """Builds ActionContexts and records the handles saved through them."""

    def __init__(self, key: str = "etl-stalled/7/1", deadline_in: float = 30.0, inc: IncidentView | None = None):
        self.key, self.deadline_in, self.inc = key, deadline_in, inc or incident()
        self.handles: list[Mapping[str, Any]] = []
        self.saved = threading.Event()

    def save(self, handle: Mapping[str, Any]) -> None:
        self.handles.append(dict(handle))
        self.saved.set()

    def __call__(self, handle: Mapping[str, Any] | None = None) -> ActionContext:
        return ActionContext(
            idempotency_key=self.key,
            incident=self.inc,
            deadline=time.time() + self.deadline_in,
            save_handle=self.save,
            now=time.time,
            handle=handle,
        )


def command(tmp_path: Path, argv: list[str], **kw: Any) -> CommandRemediation:
    params = {"argv": argv, "state_dir": str(tmp_path / "state"), **kw}
    result: CommandRemediation = build(REMEDIATIONS, "command", params)
    return result


def run(rem: CommandRemediation, ctx: Ctx) -> Outcome:
    return rem.execute(rem.plan(ctx.inc), ctx())


def pid_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pid: int, within: float = 5.0) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        if pid_gone(pid):
            return True
        time.sleep(0.05)
    return False


# ---------------------------------------------------------------------- command


def test_plugins_satisfy_the_protocol(tmp_path: Path) -> None:
    for name in ("command", "webhook"):
        cls = load(REMEDIATIONS, name)
        assert (cls.__doc__ or "").strip().splitlines()[0]
    assert isinstance(command(tmp_path, ["true"]), Remediation)
    assert isinstance(WebhookRemediation(url="http://127.0.0.1:1/x"), Remediation)


def test_plan_substitutes_placeholders_per_argument(tmp_path: Path) -> None:
    rem = command(tmp_path, ["systemctl", "restart", "{label.service}.service", "--id={incident.id}"], timeout="2m")
    plan = rem.plan(incident(service="etl worker"))
    assert plan.action == "command"
    assert plan.target == "command:systemctl"
    assert plan.details["argv"] == ["systemctl", "restart", "etl worker.service", "--id=7"]
    assert plan.details["timeout"] == 120.0
    with pytest.raises(RemediationError, match="no label 'service'") as info:
        rem.plan(incident(other="x"))
    assert info.value.recoverable is False
    targeted = command(tmp_path, ["true"], target="service:{label.service}")
    assert targeted.plan(incident(service="etl")).target == "service:etl"


def test_params_validation() -> None:
    with pytest.raises(ValueError):
        CommandRemediation.Params.model_validate({"argv": []})
    with pytest.raises(ValueError):
        CommandRemediation.Params.model_validate({"argv": ["x"], "shell": True})
    params = CommandRemediation.Params.model_validate({"argv": ["x"]}).model_dump()
    assert params["env_allow"] == ["PATH", "HOME", "LANG"] and params["timeout"] == 60.0
    CommandRemediation(**params)  # the loader's exact call shape


def test_success_and_output_tails(tmp_path: Path) -> None:
    ctx = Ctx()
    rem = command(tmp_path, [PY, "-c", "import sys; print('x' * 5000 + 'END'); print('warn', file=sys.stderr)"])
    outcome = run(rem, ctx)
    assert outcome.ok, outcome
    assert outcome.details["exit_code"] == 0
    assert outcome.details["stdout_tail"].endswith("END\n")
    assert len(outcome.details["stdout_tail"]) == 4096
    assert outcome.details["stderr_tail"] == "warn\n"
    (handle,) = ctx.handles
    assert set(handle) == {"supervisor_pid", "create_time", "status_file"}
    assert Path(handle["status_file"]).parent == (tmp_path / "state").resolve()


def test_failure_exit_code(tmp_path: Path) -> None:
    outcome = run(command(tmp_path, [PY, "-c", "import sys; sys.exit(3)"]), Ctx("k-fail"))
    assert not outcome.ok and outcome.details["exit_code"] == 3
    assert "exit code 3" in outcome.summary
    ok = run(command(tmp_path, [PY, "-c", "import sys; sys.exit(3)"], success_exit_codes=[0, 3]), Ctx("k-ok"))
    assert ok.ok


def test_missing_program(tmp_path: Path) -> None:
    outcome = run(command(tmp_path, ["/nonexistent/program"]), Ctx())
    assert not outcome.ok and outcome.details["exit_code"] == 127
    assert "could not start" in outcome.summary


def test_timeout_kills_the_process_group(tmp_path: Path) -> None:
    script = "import subprocess, time; p = subprocess.Popen(['sleep', '30']); print(p.pid, flush=True); time.sleep(30)"
    start = time.monotonic()
    outcome = run(command(tmp_path, [PY, "-c", script], timeout="700ms"), Ctx())
    assert time.monotonic() - start < 5
    assert not outcome.ok and outcome.details["timed_out"] is True
    assert "timed out" in outcome.summary
    grandchild = int(outcome.details["stdout_tail"].strip())
    assert wait_gone(grandchild)


def test_deadline_kills_supervisor_and_command(tmp_path: Path) -> None:
    script = "import os, time; print(os.getpid(), flush=True); time.sleep(30)"
    ctx = Ctx(deadline_in=1.0)
    start = time.monotonic()
    outcome = run(command(tmp_path, [PY, "-c", script], timeout="60s"), ctx)
    assert time.monotonic() - start < 6
    assert not outcome.ok and outcome.summary == "timed out"
    assert outcome.details["reason"] == "deadline"
    assert wait_gone(ctx.handles[0]["supervisor_pid"])
    assert outcome.details["timed_out"] is True  # the supervisor recorded the kill on its way out
    assert wait_gone(int(outcome.details["stdout_tail"]))


def test_env_allow_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOPS_TEST_HIDDEN", "daemon-secret")
    monkeypatch.setenv("AIOPS_TEST_PASSED", "visible")
    rem = command(
        tmp_path,
        [PY, "-c", "import json, os; print(json.dumps(dict(os.environ)))"],
        env_allow=["PATH", "AIOPS_TEST_PASSED"],
        env={"EXTRA_SETTING": "on"},
    )
    outcome = run(rem, Ctx("env-key"))
    assert outcome.ok
    env = json.loads(outcome.details["stdout_tail"])
    assert "AIOPS_TEST_HIDDEN" not in env
    assert env["AIOPS_TEST_PASSED"] == "visible"
    assert env["EXTRA_SETTING"] == "on"
    assert env["AIOPS_IDEMPOTENCY_KEY"] == "env-key"
    assert env["AIOPS_INCIDENT_ID"] == "7"
    assert env["AIOPS_INCIDENT_CHECK"] == "etl-stalled"
    assert env["AIOPS_INCIDENT_FINGERPRINT"] == "fp0123"


def test_shell_metacharacters_are_literal(tmp_path: Path) -> None:
    marks = [tmp_path / f"pwned{i}" for i in range(4)]
    args = [f"; touch {marks[0]}", f"$(touch {marks[1]})", f"`touch {marks[2]}`", "a b | c > d", "{label.service}"]
    rem = command(tmp_path, [PY, "-c", "import json, sys; print(json.dumps(sys.argv[1:]))", *args])
    ctx = Ctx(inc=incident(service=f"x && touch {marks[3]}"))
    outcome = run(rem, ctx)
    assert outcome.ok
    assert json.loads(outcome.details["stdout_tail"]) == [*args[:-1], f"x && touch {marks[3]}"]
    assert not any(m.exists() for m in marks)


def test_idempotent_under_the_key(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    argv = [PY, "-c", f"open({str(counter)!r}, 'a').write('run\\n')"]
    rem = command(tmp_path, argv)
    first = run(rem, Ctx("same-key"))
    second = run(rem, Ctx("same-key"))
    third = run(command(tmp_path, argv), Ctx("same-key"))  # a fresh instance (a restarted daemon)
    assert first.ok and second.ok and third.ok
    assert second.details["reused"] is True and third.details["reused"] is True
    assert counter.read_text() == "run\n"
    assert run(rem, Ctx("other-key")).ok
    assert counter.read_text() == "run\nrun\n"


def test_supervisor_does_nothing_when_status_exists(tmp_path: Path) -> None:
    status = tmp_path / "s.json"
    status.write_text('{"exit_code": 0}')
    marker = tmp_path / "ran"
    subprocess.run(
        [
            PY,
            "-m",
            "aiops_remediations.supervise",
            "--status",
            str(status),
            "--timeout",
            "5",
            "--",
            "touch",
            str(marker),
        ],
        check=True,
        timeout=10,
    )
    assert not marker.exists() and status.read_text() == '{"exit_code": 0}'


def test_no_run_when_the_handle_cannot_be_saved(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    rem = command(tmp_path, [PY, "-c", f"open({str(counter)!r}, 'a').write('run\\n')"])
    ctx = Ctx("gated")

    def broken_store(handle: Mapping[str, Any]) -> None:
        raise RuntimeError("store down")

    actx = ctx()
    actx.save_handle = broken_store
    with pytest.raises(RuntimeError, match="store down"):
        rem.execute(rem.plan(ctx.inc), actx)
    time.sleep(0.3)
    assert not counter.exists()
    assert run(rem, ctx).ok  # the key is still free: nothing ran under it
    assert counter.read_text() == "run\n"


def test_resume_finished_run_reads_status(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    argv = [PY, "-c", f"open({str(counter)!r}, 'a').write('run\\n'); print('done')"]
    ctx = Ctx("resume-finished")
    assert run(command(tmp_path, argv), ctx).ok
    fresh = command(tmp_path, argv)  # the daemon restarted
    outcome = fresh.resume(fresh.plan(ctx.inc), ctx(handle=ctx.handles[0]))
    assert outcome is not None and outcome.ok and outcome.details["stdout_tail"] == "done\n"
    assert counter.read_text() == "run\n"


def test_resume_waits_for_a_still_running_supervisor(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    script = f"import time; time.sleep(1.0); open({str(counter)!r}, 'a').write('run\\n'); print('late')"
    rem = command(tmp_path, [PY, "-c", script])
    ctx = Ctx("resume-running")
    results: list[Outcome] = []
    # The "old daemon": it started the run and is blocked waiting; we never touch it again.
    thread = threading.Thread(target=lambda: results.append(run(rem, ctx)), daemon=True)
    thread.start()
    assert ctx.saved.wait(10)
    handle = ctx.handles[0]
    assert not Path(handle["status_file"]).exists()  # still running
    fresh = command(tmp_path, [PY, "-c", script])
    outcome = fresh.resume(fresh.plan(ctx.inc), ctx(handle=handle))
    assert outcome is not None and outcome.ok, outcome
    assert outcome.details["stdout_tail"] == "late\n"
    assert counter.read_text() == "run\n"
    thread.join(10)
    assert results and results[0].ok


def test_resume_unknown_returns_none(tmp_path: Path) -> None:
    """The supervisor claimed the key (so the command may have run) and died without a result: unknown."""
    dead = subprocess.Popen([PY, "-c", "pass"])
    dead.wait()
    rem = command(tmp_path, ["true"])
    ctx = Ctx("lost")
    status = tmp_path / "missing.json"
    Path(f"{status}.claim").write_text(json.dumps({"pid": dead.pid, "started_at": 1.0}))
    handle = {"supervisor_pid": dead.pid, "create_time": 12.0, "status_file": str(status)}
    assert rem.resume(rem.plan(ctx.inc), ctx(handle=handle)) is None


def test_resume_without_a_claim_runs_the_command_once(tmp_path: Path) -> None:
    """Killed after the handle was saved but before "go": no claim file proves the command never started,
    so resuming simply runs it (once), instead of reporting it interrupted."""
    dead = subprocess.Popen([PY, "-c", "pass"])
    dead.wait()
    counter = tmp_path / "runs.txt"
    rem = command(tmp_path, [PY, "-c", f"open({str(counter)!r}, 'a').write('run\\n')"])
    ctx = Ctx("never-started")
    status = rem._state_dir() / status_file_name("never-started")
    handle = {"supervisor_pid": dead.pid, "create_time": 12.0, "status_file": str(status)}
    outcome = rem.resume(rem.plan(ctx.inc), ctx(handle=handle))
    assert outcome is not None and outcome.ok, outcome
    again = rem.resume(rem.plan(ctx.inc), ctx(handle=handle))  # a second restart reads the result
    assert again is not None and again.ok and again.details["reused"]
    assert counter.read_text() == "run\n"


def test_outputs_are_redacted(tmp_path: Path) -> None:
    rem = command(
        tmp_path,
        [PY, "-c", "import os; print('key is', os.environ['API_TOKEN'], 'password=hunter2')"],
        env={"API_TOKEN": "tok-abcdef123"},
    )
    outcome = run(rem, Ctx())
    assert outcome.ok
    assert "tok-abcdef123" not in outcome.details["stdout_tail"]
    assert "hunter2" not in outcome.details["stdout_tail"]


# ---------------------------------------------------------------------- webhook remediation

SECRET = "whsecret-42-abcdef"


@pytest.fixture
def server() -> Iterator[tuple[dict[str, Any], str]]:
    state: dict[str, Any] = {"status": 200, "received": []}

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state["received"].append(
                {
                    "method": self.command,
                    "headers": dict(self.headers.items()),
                    "json": json.loads(body),
                    "verified": verify(SECRET, body, self.headers.get("X-Aiops-Signature"), time.time()),
                }
            )
            self.send_response(state["status"])
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_POST = do_PUT = _handle

        def log_message(self, *args: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield state, f"http://127.0.0.1:{srv.server_address[1]}/runbooks/restart?token=qtok-9876"
    finally:
        srv.shutdown()
        srv.server_close()


def test_webhook_remediation_sends_signed_envelope(server: tuple[dict[str, Any], str]) -> None:
    state, url = server
    rem: WebhookRemediation = build(REMEDIATIONS, "webhook", {"url": url, "secret": SECRET, "timeout": "5s"})
    ctx = Ctx("wh-1")
    plan = rem.plan(ctx.inc)
    assert "qtok-9876" not in plan.description + json.dumps(dict(plan.details))
    assert plan.target == f"webhook:{url.split('/runbooks')[0]}"
    outcome = rem.execute(plan, ctx())
    assert outcome.ok and outcome.details["status"] == 200
    (req,) = state["received"]
    assert req["verified"] and req["method"] == "POST"
    assert req["headers"]["Idempotency-Key"] == "wh-1"
    assert req["json"]["idempotency_key"] == "wh-1"
    assert req["json"]["incident"]["check"] == "etl-stalled"
    assert req["json"]["plan"]["action"] == "webhook"
    assert ctx.handles  # saved before the request

    again = rem.resume(plan, ctx(handle=ctx.handles[0]))
    assert again is not None and again.ok
    assert [r["headers"]["Idempotency-Key"] for r in state["received"]] == ["wh-1", "wh-1"]


def test_webhook_remediation_body_template_and_put(server: tuple[dict[str, Any], str]) -> None:
    state, url = server
    rem = WebhookRemediation(
        url=url, method="put", body={"ref": "main", "inputs": {"service": "{label.service}", "n": 3}}
    )
    ctx = Ctx()
    plan = rem.plan(ctx.inc)
    assert plan.details["body"] == {"ref": "main", "inputs": {"service": "etl", "n": 3}}
    assert rem.execute(plan, ctx()).ok
    (req,) = state["received"]
    assert req["method"] == "PUT" and req["json"] == plan.details["body"]
    assert "X-Aiops-Signature" not in req["headers"]


@pytest.mark.parametrize(
    ("status", "ok", "recoverable"),
    [
        (500, False, True),
        (503, False, True),
        (404, False, False),
        (422, False, False),
        (429, False, True),
        (204, True, False),
    ],
)
def test_webhook_remediation_status_mapping(
    server: tuple[dict[str, Any], str], status: int, ok: bool, recoverable: bool
) -> None:
    state, url = server
    state["status"] = status
    rem = WebhookRemediation(url=url, secret=SECRET)
    outcome = rem.execute(rem.plan(incident()), Ctx()())
    assert (outcome.ok, outcome.recoverable) == (ok, recoverable)
    assert "qtok-9876" not in outcome.summary and SECRET not in outcome.summary


def test_webhook_remediation_network_error_is_recoverable() -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    rem = WebhookRemediation(url=f"http://u:pw-secret-1@127.0.0.1:{port}/x?sig=abc123456", secret=SECRET)
    outcome = rem.execute(rem.plan(incident()), Ctx()())
    assert not outcome.ok and outcome.recoverable
    for secret in ("pw-secret-1", "abc123456", SECRET):
        assert secret not in outcome.summary + json.dumps(dict(outcome.details))


def test_state_dir_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started = CommandRemediation(argv=[PY, "-c", "pass"])
    started.start(PluginContext.standalone(tmp_path / "daemon-state"))
    ctx = Ctx("default-dir")
    assert run(started, ctx).ok
    assert Path(ctx.handles[0]["status_file"]).parent == (tmp_path / "daemon-state" / "actions").resolve()
    rem = CommandRemediation(argv=[PY, "-c", "pass"])  # never started: outside the daemon
    monkeypatch.chdir(tmp_path)
    ctx = Ctx("cwd-dir")
    assert run(rem, ctx).ok
    assert Path(ctx.handles[0]["status_file"]).parent == (tmp_path / ".aiops" / "actions").resolve()
    assert os.stat(tmp_path / ".aiops" / "actions").st_mode & 0o077 == 0


def test_concurrent_executions_under_one_key_run_once(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    argv = [PY, "-c", f"import time; time.sleep(0.3); open({str(counter)!r}, 'a').write('run\\n')"]
    results: list[Outcome] = []
    threads = [
        threading.Thread(target=lambda: results.append(run(command(tmp_path, argv), Ctx("racy"))), daemon=True)
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert len(results) == 3 and all(r.ok for r in results), results
    assert counter.read_text() == "run\n"
