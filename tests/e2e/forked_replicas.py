"""Start several real daemons at the same instant, round after round, without paying the imports each time.

A launcher process imports aiops (and the plugins the test configs use) once, then, for every round the test
asks for, forks one child per replica; each child waits for the common start time and runs ``aiops run``
through the CLI's own entry point, as the console script does. The children are ordinary daemon processes
(their own pid, session, store connections and HTTP listener); only the interpreter start-up is shared.

Why not one ``subprocess.Popen`` per daemon: on a loaded CI machine importing aiops takes seconds, so the
daemons of a round would reach their migration seconds apart, which is neither "started at once" nor cheap
enough to repeat ten times. Forked after the imports, the three reach the store within milliseconds of each
other, which is the race a cold start or a rolling upgrade of a Deployment produces.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests

LAUNCHER = r"""
import json, os, sys, time
import aiops.cli, aiops.daemon, aiops.config.loader, aiops.store.store, aiops.store.migrations
for module in json.loads(sys.argv[1]):
    __import__(module)
aiops.store.migrations.head_revisions()
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    spec = json.loads(line)
    pids = []
    for replica in spec["replicas"]:
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                os.setsid()
                null = os.open(os.devnull, os.O_RDONLY)
                log = os.open(replica["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                os.dup2(null, 0)
                os.dup2(log, 1)
                os.dup2(log, 2)
                os.chdir(replica["cwd"])
                os.environ.update(spec["env"])
                time.sleep(max(0.0, spec["start"] - time.time()))
                aiops.cli.main(["run", "--config", replica["config"], "--listen", replica["listen"]])
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        pids.append(pid)
    print(json.dumps({"pids": pids}), flush=True)
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"pid": pid, "code": os.waitstatus_to_exitcode(status)}), flush=True)
"""


@dataclass(frozen=True)
class Replica:
    """One daemon of a round: its config, where it listens, its log."""

    config: Path
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class ForkedReplicas:
    """The launcher process; :meth:`round` starts a round's replicas together and :meth:`stop` ends them."""

    def __init__(self, preload: list[str], cwd: Path) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, json.dumps(preload)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=cwd,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._pids: list[int] = []
        assert json.loads(self._readline(120)) == {"ready": True}

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self._lines.put(line)
        self._lines.put("")  # EOF: the launcher is gone

    def _readline(self, timeout: float) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the launcher did not answer within {timeout}s") from None
        if not line:
            raise AssertionError(f"the launcher exited with {self._proc.poll()}")
        return line

    def round(self, replicas: list[Replica], env: dict[str, str] | None = None) -> None:
        """Fork one daemon per replica; all start at the same instant, 0.2 s from now."""
        assert self._proc.stdin is not None
        spec = {
            "start": time.time() + 0.2,
            "env": {"AIOPS_LOG_JSON": "1", **(env or {})},
            "replicas": [
                {
                    "config": str(r.config),
                    "listen": f"127.0.0.1:{r.port}",
                    "log": str(r.log),
                    "cwd": str(r.config.parent),
                }
                for r in replicas
            ],
        }
        self._proc.stdin.write(json.dumps(spec) + "\n")
        self._proc.stdin.flush()
        self._pids = list(json.loads(self._readline(30))["pids"])

    def wait_ready(self, replicas: list[Replica], timeout: float) -> None:
        """Every replica answers /readyz; a replica that exited fails at once with its log."""
        pending = list(replicas)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for replica, pid in zip(replicas, self._pids, strict=True):
                if replica in pending and _answers(replica.url + "/readyz"):
                    pending.remove(replica)
                elif replica in pending and not _alive(pid):
                    raise AssertionError(f"replica {replica.port} exited before it was ready:\n{replica.logs()}")
            time.sleep(0.05)
        assert not pending, "not ready within {timeout}s:\n" + "\n".join(r.logs()[-3000:] for r in pending)

    def stop(self, timeout: float = 30.0) -> list[int]:
        """SIGTERM the round's daemons; their exit codes, in order."""
        for pid in self._pids:
            os.kill(pid, signal.SIGTERM)
        codes: dict[int, int] = {}
        for _ in self._pids:
            done = json.loads(self._readline(timeout))
            codes[int(done["pid"])] = int(done["code"])
        return [codes[pid] for pid in self._pids]

    def close(self) -> None:
        for pid in self._pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def _alive(pid: int) -> bool:
    """The child exists and is not a zombie (its launcher reaps it only after the round)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
