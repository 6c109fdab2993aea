"""Detached supervisor of one remediation command: run it once, record how it ended in a status file.

Why a separate process: the daemon may crash or be restarted while a remediation runs. The supervisor is
started in its own session, so it outlives the daemon; it writes the result atomically to a status file
named after the action's idempotency key, so a restarted daemon reads the outcome instead of guessing, and
never runs the command a second time. Stdlib only, so it starts fast and cannot break on a heavy import.

Protocol (files next to ``STATUS``):

- ``STATUS`` exists: the command already ran under this key; the supervisor does nothing.
- ``STATUS.claim`` is created exclusively (``O_EXCL``) before the command starts: at most one supervisor
  per key ever runs it, even when two are started concurrently. It holds the supervisor's pid.
- With ``--gate`` the supervisor first waits for a line ``go`` on stdin: the daemon sends it only after it
  has saved the resume handle, so no command runs that the daemon cannot find after a crash. EOF (the
  daemon died first) means: do nothing.
- SIGTERM kills the command's process group and still writes the status (``timed_out: true``).

Usage: ``python -m aiops_remediations.supervise --status FILE --timeout SECONDS [--cwd DIR] [--gate] -- ARGV``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

TAIL_BYTES = 4096
KILL_GRACE = 2.0


def _tail(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - TAIL_BYTES))
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def write_atomic(path: str, data: dict[str, Any]) -> None:
    """Write JSON so that readers see either nothing or the whole document (tmp file + fsync + rename)."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    with contextlib.suppress(OSError):
        dir_fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _killpg(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _stop(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM the command's process group, then SIGKILL it after a short grace period."""
    _killpg(child.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(timeout=KILL_GRACE)
    _killpg(child.pid, signal.SIGKILL)  # also reaps grandchildren that ignored SIGTERM
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(timeout=KILL_GRACE)


def run(status: str, timeout: float, argv: list[str], cwd: str | None = None, gate: bool = False) -> int:
    if os.path.exists(status):
        return 0
    if gate and sys.stdin.readline().strip() != "go":
        return 3
    claim = f"{status}.claim"
    try:
        fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return 0  # another supervisor owns this key
    with os.fdopen(fd, "w") as fh:
        json.dump({"pid": os.getpid(), "started_at": time.time()}, fh)
    if os.path.exists(status):
        return 0
    out_path, err_path = f"{status}.stdout", f"{status}.stderr"
    started = time.time()
    result: dict[str, Any] = {"exit_code": None, "timed_out": False, "started_at": started, "error": None}
    terminated: list[bool] = []
    child: subprocess.Popen[bytes] | None = None

    def on_term(signum: int, frame: object) -> None:
        terminated.append(True)
        if child is not None:
            _killpg(child.pid, signal.SIGKILL)

    signal.signal(signal.SIGTERM, on_term)
    try:
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            try:
                child = subprocess.Popen(
                    argv,
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,  # its own process group, so a timeout kills its children too
                )
            except OSError as exc:
                result["exit_code"] = 127 if isinstance(exc, FileNotFoundError) else 126
                result["error"] = f"{type(exc).__name__}: {exc.strerror or exc}"
            else:
                if not terminated:
                    try:
                        child.wait(timeout=timeout)
                    except subprocess.TimeoutExpired:
                        result["timed_out"] = True
                        _stop(child)
                else:
                    _killpg(child.pid, signal.SIGKILL)
                while child.poll() is None:  # SIGTERM arrived: the handler killed the group, reap it
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        child.wait(timeout=KILL_GRACE)
                result["exit_code"] = child.returncode
                if terminated:
                    result["timed_out"] = True
                    result["error"] = "supervisor got SIGTERM (daemon deadline or service stop); command killed"
        result["stdout_tail"] = _tail(out_path)
        result["stderr_tail"] = _tail(err_path) or (result["error"] or "")
    finally:
        result["finished_at"] = time.time()
        result.setdefault("stdout_tail", "")
        result.setdefault("stderr_tail", "")
        write_atomic(status, result)
        for path in (out_path, err_path):
            with contextlib.suppress(OSError):
                os.unlink(path)
    return 0


def main(args: list[str] | None = None) -> int:
    summary = (__doc__ or "").splitlines()[0]
    parser = argparse.ArgumentParser(prog="aiops_remediations.supervise", description=summary)
    parser.add_argument("--status", required=True, help="status file to write (JSON)")
    parser.add_argument("--timeout", required=True, type=float, help="seconds before the command is killed")
    parser.add_argument("--cwd", default=None, help="working directory of the command")
    parser.add_argument("--gate", action="store_true", help="wait for 'go' on stdin before running")
    parser.add_argument("argv", nargs=argparse.REMAINDER, help="-- then the command and its arguments")
    ns = parser.parse_args(args)
    argv = list(ns.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        parser.error("no command given after --")
    return run(ns.status, ns.timeout, argv, cwd=ns.cwd, gate=ns.gate)


if __name__ == "__main__":
    sys.exit(main())
