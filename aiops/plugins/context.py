"""What a plugin is handed when it starts: the daemon's services, narrowed to what a plugin may use.

Why a context instead of globals: a plugin is built from its config block alone, yet some need the daemon's
own things (the directory where it keeps state across restarts, the store that pushed telemetry lands in,
the model registry). Handing them over in :meth:`aiops.plugins.Source.start` keeps every dependency visible in
one typed record, lets a test start a plugin against a temporary directory and its own store, and means no
plugin reads an environment variable or a module-level binding the daemon happened to set.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import structlog

from aiops.pushed import ClosablePushedEvents as ClosablePushedEvents  # re-exported for plugins
from aiops.pushed import PushedEvents as PushedEvents
from aiops.registry import RegistryOpener, open_registry


def _wall_clock() -> float:
    return time.time()


@dataclass(frozen=True)
class PluginContext:
    """The services a started plugin may use. Frozen: a plugin cannot swap a service for its neighbours."""

    state_dir: Path
    """Where the plugin may keep files that must survive a restart (e.g. status files of running commands);
    a plugin keeps to a subdirectory named after itself."""
    clock: Callable[[], float] = _wall_clock
    """Seconds since the epoch; a test hands in :meth:`aiops.testing.FakeClock.now`."""
    log: Any = field(default_factory=lambda: structlog.get_logger("aiops.plugin"))
    """A structlog logger; bind the plugin's own context (``ctx.log.bind(check=...)``) rather than format it."""
    http: requests.Session = field(default_factory=requests.Session)
    """One HTTP session shared by the plugins of a daemon (connection pooling, one place for proxies)."""
    events: PushedEvents | None = None
    """Pushed telemetry (``POST /api/v1/ingest``, Alertmanager's webhook) of the daemon's store; None when no
    store runs (a standalone ``aiops detect``)."""
    model_registry: RegistryOpener = open_registry
    """Opens the model registry a plugin's parameters name (a path, ``file://`` or ``mlflow:`` URI): the one
    way detectors (drift references), remediations (retrain, rollback) and the demo reach model versions."""

    @classmethod
    def standalone(cls, state_dir: str | Path = ".aiops", *, events: PushedEvents | None = None) -> PluginContext:
        """A context for a plugin run outside the daemon (CLI commands, tests, notebooks)."""
        return cls(state_dir=Path(state_dir).resolve(), events=events)
