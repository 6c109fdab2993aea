"""The daemon starts every plugin with its context and stops it when a reload replaces it or at shutdown; the
context carries what plugins used to find in the environment or in module globals."""

from __future__ import annotations

import gc
import os
import weakref
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import ClassVar

import pytest
from prometheus_client import CollectorRegistry

from aiops import plugins
from aiops.config.loader import load_config
from aiops.daemon import Daemon
from aiops.plugins import PluginContext, Source
from aiops.types import Frame


class TrackedSource(Source):
    """Remembers its starts and stops (lifecycle test plugin)."""

    started: ClassVar[list[TrackedSource]] = []

    def __init__(self) -> None:
        self.stops = 0

    def start(self, ctx: PluginContext) -> None:
        super().start(ctx)
        TrackedSource.started.append(self)

    def stop(self) -> None:
        self.stops += 1

    def collect(self, since: float | None, until: float) -> Frame:
        return Frame(source="tracked", collected_at=until)


CONFIG = """
store: {{url: "sqlite:///{work}/aiops.db"}}
state_dir: {work}/state
checks:
  - name: tracked
    every: 1m
    source: {{type: tracked}}
    detectors: [{{type: threshold, above: 1}}]
"""


@pytest.fixture
def tracked() -> Iterator[None]:
    group = plugins.available(plugins.SOURCES)
    group["tracked"] = EntryPoint("tracked", f"{__name__}:TrackedSource", plugins.SOURCES)
    TrackedSource.started.clear()
    try:
        yield
    finally:
        group.pop("tracked", None)


def test_the_daemon_starts_plugins_with_its_context_and_stops_them(tracked: None, tmp_path: Path) -> None:
    path = tmp_path / "aiops.yaml"
    path.write_text(CONFIG.format(work=tmp_path))
    daemon = Daemon(load_config(str(path), env={}), registry=CollectorRegistry())
    first = daemon.runtime().checks["tracked"].source
    assert isinstance(first, TrackedSource) and TrackedSource.started == [first]
    ctx = first.context
    assert ctx is not None
    assert ctx.state_dir == (tmp_path / "state").resolve()
    assert ctx.events is daemon.store  # what the HTTP API ingests, read by the push sources
    assert "AIOPS_STATE_DIR" not in os.environ
    assert daemon.reload() == (True, "reloaded")
    second = daemon.runtime().checks["tracked"].source
    assert second is not first and first.stops == 1 and second.stops == 0
    daemon.shutdown()
    assert second.stops == 1 and first.stops == 1


def test_a_reload_gives_the_replaced_runtime_back_to_the_cyclic_collector(tracked: None, tmp_path: Path) -> None:
    """The daemon freezes its start-up objects (out of the collector's full passes); a reload must unfreeze
    them, or a replaced plugin caught in a reference cycle would never be freed. A daemon that never froze
    (not started: an embedding process's tests) leaves the collector alone, even on reload."""
    path = tmp_path / "aiops.yaml"
    path.write_text(CONFIG.format(work=tmp_path))
    daemon = Daemon(load_config(str(path), env={}), registry=CollectorRegistry())
    frozen_before = gc.get_freeze_count()
    assert daemon.reload() == (True, "reloaded")
    assert gc.get_freeze_count() == frozen_before
    first = daemon.runtime().checks["tracked"].source
    first.cycle = first  # type: ignore[attr-defined]  # only the cyclic collector can free it
    replaced = weakref.ref(first)
    TrackedSource.started.clear()
    del first
    daemon._freeze_long_lived()  # what Daemon.start does once it is ready
    try:
        assert gc.get_freeze_count() > 0
        assert daemon.reload() == (True, "reloaded")
        assert replaced() is None
        assert gc.get_freeze_count() > 0  # the new runtime is out of the full passes again
    finally:
        daemon.shutdown()
    assert gc.get_freeze_count() == 0  # an embedding process gets its collector back
