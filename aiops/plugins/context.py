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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from aiops.pushed import ClosablePushedEvents as ClosablePushedEvents  # re-exported for plugins
from aiops.pushed import PushedEvents as PushedEvents

if TYPE_CHECKING:
    import requests

    from aiops.registry import ModelRegistry, RegistryOpener

_T = TypeVar("_T")


def _wall_clock() -> float:
    return time.time()


def _plugin_logger() -> Any:
    import structlog

    return structlog.get_logger("aiops.plugin")


def _http_session() -> requests.Session:
    import requests

    return requests.Session()


def _open_registry(uri: str) -> ModelRegistry:
    from aiops.registry import open_registry

    return open_registry(uri)


class _MadeOnFirstUse(Generic[_T]):
    """A dataclass field whose default is made when it is first read, not when the context is built.

    Why: every CLI call that builds a plugin builds a standalone context, and making the logger and the HTTP
    session up front imports structlog and requests (about 0.3 s of CPU together) for plugins that mostly
    never touch them (``aiops drift`` on two files). A value passed to the constructor is kept as given.
    """

    def __init__(self, factory: Callable[[], _T]) -> None:
        self._factory = factory
        self._slot = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = f"_{name}_value"

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> _MadeOnFirstUse[_T]: ...
    @overload
    def __get__(self, obj: object, objtype: type | None = None) -> _T: ...
    def __get__(self, obj: object | None, objtype: type | None = None) -> _T | _MadeOnFirstUse[_T]:
        if obj is None:
            return self  # the dataclass's default for __init__: "not given"
        value = obj.__dict__.get(self._slot, self)
        if value is self:
            value = self._factory()
            obj.__dict__[self._slot] = value
        return value  # type: ignore[no-any-return]

    def __set__(self, obj: object, value: _T | _MadeOnFirstUse[_T]) -> None:
        obj.__dict__[self._slot] = value


@dataclass(frozen=True)
class PluginContext:
    """The services a started plugin may use. Frozen: a plugin cannot swap a service for its neighbours."""

    state_dir: Path
    """Where the plugin may keep files that must survive a restart (e.g. status files of running commands);
    a plugin keeps to a subdirectory named after itself."""
    clock: Callable[[], float] = _wall_clock
    """Seconds since the epoch; a test hands in :meth:`aiops.testing.FakeClock.now`."""
    log: _MadeOnFirstUse[Any] = _MadeOnFirstUse(_plugin_logger)
    """A structlog logger; bind the plugin's own context (``ctx.log.bind(check=...)``) rather than format it."""
    http: _MadeOnFirstUse[requests.Session] = _MadeOnFirstUse(_http_session)
    """One HTTP session shared by the plugins of a daemon (connection pooling, one place for proxies)."""
    events: PushedEvents | None = None
    """Pushed telemetry (``POST /api/v1/ingest``, Alertmanager's webhook) of the daemon's store; None when no
    store runs (a standalone ``aiops detect``)."""
    model_registry: RegistryOpener = _open_registry
    """Opens the model registry a plugin's parameters name (a path, ``file://`` or ``mlflow:`` URI): the one
    way detectors (drift references), remediations (retrain, rollback) and the demo reach model versions."""

    @classmethod
    def standalone(cls, state_dir: str | Path = ".aiops", *, events: PushedEvents | None = None) -> PluginContext:
        """A context for a plugin run outside the daemon (CLI commands, tests, notebooks)."""
        return cls(state_dir=Path(state_dir).resolve(), events=events)
