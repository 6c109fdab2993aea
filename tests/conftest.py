"""Shared fixtures: real servers (PostgreSQL, Prometheus, Alertmanager, a webhook receiver) and isolation.

The helpers live in ``tests/servers.py`` so that plain functions (``free_port``, ``start_prometheus``) can be
imported by tests that need more control than a fixture gives.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

# --import-mode=importlib does not put the repository on sys.path; tests import ``tests.servers``.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.servers import (  # noqa: E402
    WebhookReceiver,
    postgres_cluster,
    start_alertmanager,
    start_prometheus,
    stop_process,
)

ServerFactory = Callable[[str], tuple[subprocess.Popen[Any], str]]


@pytest.fixture
def test_plugins() -> Iterator[None]:
    """The test plugins of :mod:`aiops.testing` (scripted source, capturing notifier, ...) registered for one
    test, with the scripted source's channels empty (``pytest.mark.usefixtures("test_plugins")``)."""
    from aiops.testing import ScriptedSource, register_test_plugins, unregister_test_plugins

    register_test_plugins()
    ScriptedSource.reset()
    yield
    unregister_test_plugins()


@pytest.fixture(scope="session", autouse=True)
def _logging() -> None:
    """Route every log line through aiops' own configuration (JSON on the captured stderr), as in the daemon.

    structlog's default prints to stdout from any thread; configured, lines land in pytest's per-test
    capture and are shown only for failing tests. ``structlog.testing.capture_logs`` still works.
    """
    from aiops.logs import configure_logging

    configure_logging("info", json=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a throwaway PostgreSQL cluster, one per test session (tests use their own schema
    or clean up after themselves). Fails, never skips, when the cluster cannot start."""
    with postgres_cluster() as cluster:
        yield cluster.url


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A local HTTP receiver recording every request; ``.url``, ``.requests``, ``.respond_with(...)``."""
    receiver = WebhookReceiver()
    try:
        yield receiver
    finally:
        receiver.close()


@pytest.fixture
def registry() -> CollectorRegistry:
    """A fresh metrics registry, so no test sees another's metrics or trips over a duplicate name."""
    return CollectorRegistry()


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    """``start(config_yaml) -> (process, url)``: real Prometheus servers, stopped after the test."""
    procs: list[subprocess.Popen[Any]] = []

    def start(config_yaml: str) -> tuple[subprocess.Popen[Any], str]:
        proc, url = start_prometheus(config_yaml, tmp_path / f"prometheus-{len(procs)}")
        procs.append(proc)
        return proc, url

    try:
        yield start
    finally:
        for proc in procs:
            stop_process(proc)


@pytest.fixture
def alertmanager_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    """``start(config_yaml) -> (process, url)``: real Alertmanager servers, stopped after the test."""
    procs: list[subprocess.Popen[Any]] = []

    def start(config_yaml: str) -> tuple[subprocess.Popen[Any], str]:
        proc, url = start_alertmanager(config_yaml, tmp_path / f"alertmanager-{len(procs)}")
        procs.append(proc)
        return proc, url

    try:
        yield start
    finally:
        for proc in procs:
            stop_process(proc)
