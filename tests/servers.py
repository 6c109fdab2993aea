"""Real servers for the tests: a throwaway PostgreSQL cluster, Prometheus, Alertmanager, a webhook receiver.

Why real servers: the bugs that matter (a SQL dialect difference, an exposition Prometheus rejects, a
receiver answering 429) only show against the real thing. Every helper fails the test loudly (never skips)
when its binary is missing, so a machine without the test dependencies cannot pass by testing less; the
binaries come from ``scripts/install-test-deps.sh``.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

INSTALL_HINT = "run `bash scripts/install-test-deps.sh` to install the test dependencies"


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago (callers retry on the rare race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_binary(name: str, *candidates: str) -> str:
    """The path of a required binary, or fail the test saying how to install it."""
    for candidate in (*candidates, name):
        path = candidate if os.path.isabs(candidate) else shutil.which(candidate)
        if path and os.access(path, os.X_OK):
            return path
    pytest.fail(f"required binary {name!r} not found; {INSTALL_HINT}", pytrace=False)


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL: a test never leaves a server behind."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_http_ok(url: str, proc: subprocess.Popen[Any] | None, timeout: float, log: Path | None = None) -> None:
    """Poll ``url`` until it answers 200; fail with the server's log if it exits or the time runs out."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            pytest.fail(
                f"server exited with {proc.returncode} before {url} was ready:\n{_tail(log) if log else ''}",
                pytrace=False,
            )
        try:
            r = requests.get(url, timeout=1)
            if r.status_code == 200:
                return
            last = f"HTTP {r.status_code}"
        except requests.RequestException as exc:
            last = type(exc).__name__
        time.sleep(0.1)
    if proc is not None:
        stop_process(proc)
    pytest.fail(f"{url} not ready after {timeout:.0f}s ({last}):\n{_tail(log) if log else ''}", pytrace=False)


def _start_server(
    binary: str,
    args: Sequence[str],
    tmpdir: Path,
    name: str,
    port: int,
) -> tuple[subprocess.Popen[Any], str]:
    log = tmpdir / f"{name}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([binary, *args], stdout=out, stderr=subprocess.STDOUT, cwd=tmpdir)
    url = f"http://127.0.0.1:{port}"
    wait_http_ok(f"{url}/-/ready", proc, timeout=30, log=log)
    return proc, url


def start_prometheus(config_yaml: str, tmpdir: Path | str) -> tuple[subprocess.Popen[Any], str]:
    """Start a real Prometheus on 127.0.0.1 with ``config_yaml``; returns (process, base URL) once ready.

    Storage lives under ``tmpdir``. The caller stops it with :func:`stop_process` (or use the
    ``prometheus_factory`` fixture, which does). Lifecycle API is on, so ``POST /-/reload`` works.
    """
    binary = find_binary("prometheus", "/usr/bin/prometheus")
    tmp = Path(tmpdir)
    tmp.mkdir(parents=True, exist_ok=True)
    config = tmp / "prometheus.yml"
    config.write_text(config_yaml)
    port = free_port()
    args = [
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp / 'prometheus-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
        "--log.level=warn",
    ]
    return _start_server(binary, args, tmp, "prometheus", port)


def start_alertmanager(config_yaml: str, tmpdir: Path | str) -> tuple[subprocess.Popen[Any], str]:
    """Start a real Alertmanager on 127.0.0.1 (clustering off); returns (process, base URL) once ready.

    Debian names the binary ``prometheus-alertmanager``; upstream names it ``alertmanager``.
    """
    binary = find_binary("prometheus-alertmanager", "/usr/bin/prometheus-alertmanager", "alertmanager")
    tmp = Path(tmpdir)
    tmp.mkdir(parents=True, exist_ok=True)
    config = tmp / "alertmanager.yml"
    config.write_text(config_yaml)
    port = free_port()
    args = [
        f"--config.file={config}",
        f"--storage.path={tmp / 'alertmanager-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # no gossip port: nothing else bound, no peers looked for
        "--log.level=warn",
    ]
    return _start_server(binary, args, tmp, "alertmanager", port)


# -- PostgreSQL ---------------------------------------------------------------------------------------------
def _pg_bindir() -> Path:
    """PostgreSQL 15's binaries (Debian layout), else the newest installed, else ``pg_ctl`` on PATH."""
    preferred = Path("/usr/lib/postgresql/15/bin")
    if (preferred / "pg_ctl").exists():
        return preferred
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    pytest.fail(f"PostgreSQL server binaries (initdb, pg_ctl) not found; {INSTALL_HINT}", pytrace=False)


@dataclass
class PostgresCluster:
    """A throwaway cluster: ``initdb`` + ``pg_ctl`` in a temp dir, trust auth, fsync off, 127.0.0.1 only.

    initdb refuses to run as root, so as root the cluster runs as the ``postgres`` user (``runuser``) in a
    directory handed to that user.
    """

    root: Path
    port: int = 0
    bindir: Path = field(default_factory=_pg_bindir)

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        runuser = shutil.which("runuser")
        if runuser:
            return [runuser, "-u", "postgres", "--", *argv]
        su = shutil.which("su")
        if su:
            import shlex

            return [su, "postgres", "-s", "/bin/sh", "-c", shlex.join(argv)]
        raise RuntimeError("running as root but neither runuser nor su is available to drop to postgres")

    def _run(self, argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self._as_owner(argv), capture_output=True, text=True, timeout=timeout, cwd=self.root, check=False
        )

    def start(self, attempts: int = 3) -> None:
        if os.geteuid() == 0:
            import pwd

            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root but there is no `postgres` user to run the cluster as") from None
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self.root.chmod(0o700)
        init = self._run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.datadir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed ({init.returncode}):\n{init.stdout}\n{init.stderr}")
        errors = []
        for _ in range(attempts):
            self.port = free_port()
            result = self._pg_ctl_start()
            if result.returncode == 0:
                return
            errors.append(f"{result.stdout}{result.stderr}\n{_tail(self.root / 'postgres.log', 15)}")
        raise RuntimeError("pg_ctl start failed:\n" + "\n---\n".join(errors))

    def _pg_ctl_start(self) -> subprocess.CompletedProcess[str]:
        options = " ".join(
            [
                f"-p {self.port}",
                f"-k {self.root}",
                "-c listen_addresses=127.0.0.1",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=100",
            ]
        )
        return self._run(
            [
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-l",
                str(self.root / "postgres.log"),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ]
        )

    def halt(self) -> None:
        """Stop the server (an outage), keeping its data for :meth:`restart`."""
        result = self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop"], 60)
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl stop failed: {result.stdout}{result.stderr}")

    def restart(self) -> None:
        """Start a halted server again on the same port."""
        result = self._pg_ctl_start()
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {result.stdout}{result.stderr}")

    def stop(self) -> None:
        if self.datadir.exists():
            self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop"], 60)
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A started cluster for the duration of the block; fails the test (never skips) if it cannot start."""
    # As root the cluster runs as `postgres`, which must be able to reach the directory: /tmp, not a
    # TMPDIR that may sit under a root-only home.
    parent = "/tmp" if os.geteuid() == 0 and os.path.isdir("/tmp") else None
    root = Path(tempfile.mkdtemp(prefix="aiops-pg-", dir=parent))
    cluster = None
    try:
        cluster = PostgresCluster(root)
        cluster.start()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        if cluster is not None:
            cluster.stop()
        else:
            shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"could not start a throwaway PostgreSQL cluster: {exc}\n{INSTALL_HINT}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


def create_database(base_url: str) -> str:
    """A new, empty database on the cluster at ``base_url``; its SQLAlchemy URL."""
    import uuid

    import sqlalchemy as sa

    name = "t_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return sa.make_url(base_url).set(database=name).render_as_string(hide_password=False)


# -- webhook receiver ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RecordedRequest:
    """One request the receiver got. ``json`` is the parsed body, or None when it was not JSON."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any
    received_at: float


class WebhookReceiver:
    """A local HTTP server that records every request and answers with scripted status codes.

    ``respond_with(429, 500)`` makes the next two requests get 429 then 500, then the default (200) again;
    ``set_default(503)`` changes the default. Extra headers (e.g. ``Retry-After``) per scripted answer go
    through ``respond_with((429, {"Retry-After": "1"}))``. Thread-safe: the server answers from its own
    threads while the test reads :attr:`requests`.
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._requests: list[RecordedRequest] = []
        self._script: list[tuple[int, dict[str, str]]] = []
        self._default: tuple[int, dict[str, str]] = (200, {})
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                try:
                    parsed = json.loads(body) if body else None
                except ValueError:
                    parsed = None
                status, headers = receiver._record(
                    RecordedRequest(
                        method=self.command,
                        path=self.path,
                        headers={k.lower(): v for k, v in self.headers.items()},
                        body=body,
                        json=parsed,
                        received_at=time.time(),
                    )
                )
                payload = json.dumps({"status": status}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_PUT = do_GET = do_DELETE = do_PATCH = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def _record(self, request: RecordedRequest) -> tuple[int, dict[str, str]]:
        with self._lock:
            self._requests.append(request)
            answer = self._script.pop(0) if self._script else self._default
            self._lock.notify_all()
            return answer

    def respond_with(self, *answers: int | tuple[int, dict[str, str]]) -> None:
        with self._lock:
            for answer in answers:
                self._script.append(answer if isinstance(answer, tuple) else (answer, {}))

    def set_default(self, status: int, headers: dict[str, str] | None = None) -> None:
        with self._lock:
            self._default = (status, dict(headers or {}))

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of what was received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until at least ``count`` requests arrived; fail the test with what did arrive otherwise."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    got = [f"{r.method} {r.path}" for r in self._requests]
                    pytest.fail(f"webhook receiver got {len(got)} of {count} requests in {timeout}s: {got}")
                self._lock.wait(left)
            return list(self._requests)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class DaskCluster:
    """A real ``distributed`` scheduler and one worker on 127.0.0.1 (``env`` reaches the worker: PYTHONPATH
    for a job's own modules)."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.env = {**os.environ, **(env or {})}
        self.port = free_port()
        self.procs: list[subprocess.Popen[Any]] = []

    @property
    def address(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[Any]:
        log = (self.workdir / f"{name}.log").open("ab")
        proc = subprocess.Popen(argv, cwd=self.workdir, env=self.env, stdout=log, stderr=log, start_new_session=True)
        self.procs.append(proc)
        return proc

    def start(self, python: str) -> DaskCluster:
        self._spawn(
            "dask-scheduler",
            [python, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(self.port),
             "--dashboard-address", ":0", "--no-show"],
        )
        self._wait_port()
        self._spawn(
            "dask-worker",
            [python, "-m", "distributed.cli.dask_worker", self.address, "--host", "127.0.0.1", "--nworkers", "1",
             "--nthreads", "1", "--no-dashboard"],
        )
        return self

    def _wait_port(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    pytest.fail(f"dask process exited: {_tail(self.workdir / 'dask-scheduler.log')}", pytrace=False)
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            time.sleep(0.2)
        pytest.fail(f"dask scheduler not up within {timeout}s", pytrace=False)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            stop_process(proc)


class RayCluster:
    """A real single-node Ray cluster with its job server, started with ``ray start --head --block``.

    Usage statistics are switched off (nothing leaves the machine); the object store is kept small for a
    2-core test machine; ``env`` reaches the jobs (PYTHONPATH for a job's own modules).
    """

    def __init__(self, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's unix sockets live here
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})}
        self.port = free_port()
        self.dashboard_port = free_port()
        self.proc: subprocess.Popen[Any] | None = None

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def start(self, ray_binary: str) -> RayCluster:
        log = (self.workdir / "ray.log").open("ab")
        self.proc = subprocess.Popen(
            [ray_binary, "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(self.port),
             "--dashboard-host", "127.0.0.1", "--dashboard-port", str(self.dashboard_port), "--include-dashboard",
             "true", "--num-cpus", "2", "--object-store-memory", str(100 * 1024 * 1024), "--temp-dir",
             str(self.temp), "--disable-usage-stats"],
            cwd=self.workdir, env=self.env, stdout=log, stderr=log, start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"ray exited: {_tail(self.workdir / 'ray.log')}", pytrace=False)
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.address}/api/version", timeout=2).status_code == 200:
                    return self
            time.sleep(0.5)
        pytest.fail(f"ray job server not up within 120s: {_tail(self.workdir / 'ray.log')}", pytrace=False)

    def stop(self, ray_binary: str) -> None:
        subprocess.run([ray_binary, "stop", "--force"], env=self.env, capture_output=True, timeout=60)
        if self.proc is not None:
            stop_process(self.proc)
        shutil.rmtree(self.temp, ignore_errors=True)
