"""The daemon's scheduling tells the truth: a check that runs longer than its interval has its skipped runs
counted and raised as ``check_overrun``, and its duration covers the whole run."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from aiops.config.loader import load_config
from aiops.daemon import Daemon
from aiops.testing import ScriptedSource, register_test_plugins, unregister_test_plugins

CONFIG = """
store: {{url: "sqlite:///{work}/aiops.db"}}
state_dir: {work}/state
server: {{listen: "127.0.0.1:0"}}
checks:
  - name: slow
    every: 0.5s
    timeout: 5s
    source: {{type: scripted, channel: slow, hang_seconds: 1.6}}
    detectors: [{{type: threshold, above: 100}}]
    policy: {{}}
"""


@pytest.fixture(autouse=True)
def _plugins() -> Iterator[None]:
    register_test_plugins()
    ScriptedSource.reset()
    yield
    unregister_test_plugins()


def _wait(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _metric(daemon: Daemon, pattern: str) -> float:
    text = generate_latest(daemon.registry).decode()
    found = re.search(pattern, text, re.M)
    return float(found.group(1)) if found else 0.0


def test_a_check_longer_than_its_interval_is_counted_and_raised(tmp_path: Path) -> None:
    path = tmp_path / "aiops.yaml"
    path.write_text(CONFIG.format(work=tmp_path))
    daemon = Daemon(load_config(path))
    daemon.start()
    try:
        skipped = r'^aiops_check_ticks_skipped_total\{check="slow"\} (\S+)$'
        _wait(lambda: _metric(daemon, skipped) >= 2, 30, "skipped runs to be counted")
        _wait(lambda: [i for i in daemon.store.list_incidents() if i["kind"] == "check_overrun"], 30, "check_overrun")
        runs = _metric(daemon, r'^aiops_check_duration_seconds_count\{check="slow"\} (\S+)$')
        total = _metric(daemon, r'^aiops_check_duration_seconds_sum\{check="slow"\} (\S+)$')
        assert runs >= 1 and total / runs >= 1.5  # the whole run, not the 2 ms after the source returned
    finally:
        daemon.shutdown()
