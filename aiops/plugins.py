"""The plugin contracts and the one loader that finds every plugin through entry points.

Built-ins are registered in ``pyproject.toml`` exactly like a third-party package would register its own,
so the daemon never imports ``aiops_detectors`` or ``aiops_remediations`` directly. A plugin is a class
with a pydantic ``Params`` model (its configuration, validated with line numbers by the config loader)
and a keyword-only constructor taking those parameters, scikit-learn style: the constructor stores, the
methods work.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from aiops.errors import AiopsError, PluginNotFound
from aiops.types import ActionContext, Delivery, Finding, Frame, IncidentView, Message, Outcome, Plan

SOURCES = "aiops.sources"
DETECTORS = "aiops.detectors"
REMEDIATIONS = "aiops.remediations"
NOTIFIERS = "aiops.notifiers"
GROUPS = (SOURCES, DETECTORS, REMEDIATIONS, NOTIFIERS)


class NoParams(BaseModel):
    """Parameters of a plugin that takes none; unknown keys are still an error."""

    model_config = ConfigDict(extra="forbid")


@runtime_checkable
class Source(Protocol):
    """Collects telemetry. Side-effect free; raises :class:`aiops.errors.SourceError` on failure.

    ``since`` is the ``until`` of the previous successful collection (None on the first), so a source
    returns only what is new. Incremental state such as a file offset is an optimisation the source may
    keep in ``state_dict`` (persisted by the daemon), never a correctness requirement.
    """

    Params: ClassVar[type[BaseModel]]

    def collect(self, since: float | None, until: float) -> Frame: ...


@runtime_checkable
class Detector(Protocol):
    """Turns a frame into findings. Stateful detectors persist through ``state_dict``/``load_state_dict``."""

    Params: ClassVar[type[BaseModel]]

    def evaluate(self, frame: Frame) -> list[Finding]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


@runtime_checkable
class Remediation(Protocol):
    """Acts on an incident. ``plan`` is pure; ``execute`` is idempotent under ``ctx.idempotency_key``.

    ``resume`` is called after a crash for an execution that had saved a handle: it returns the outcome if
    the handle proves how the execution ended (or waits for it to end), or None when it cannot know, in
    which case the ledger marks the execution ``failed: interrupted`` rather than risk running it twice.
    """

    Params: ClassVar[type[BaseModel]]

    def plan(self, incident: IncidentView) -> Plan: ...

    def execute(self, plan: Plan, ctx: ActionContext) -> Outcome: ...

    def resume(self, plan: Plan, ctx: ActionContext) -> Outcome | None: ...


@runtime_checkable
class Notifier(Protocol):
    """Delivers a message; raises :class:`aiops.errors.DeliveryError` saying whether a retry can help."""

    Params: ClassVar[type[BaseModel]]

    def send(self, message: Message) -> Delivery: ...


_PROTOCOLS: dict[str, type] = {
    SOURCES: Source,
    DETECTORS: Detector,
    REMEDIATIONS: Remediation,
    NOTIFIERS: Notifier,
}


@functools.cache
def available(group: str) -> dict[str, EntryPoint]:
    """Every installed plugin of a group by name (cached: entry points do not change while running)."""
    return {ep.name: ep for ep in entry_points(group=group)}


def load(group: str, name: str) -> type[Any]:
    """The plugin class registered as ``name`` in ``group``; raises PluginNotFound listing known names."""
    eps = available(group)
    if name not in eps:
        raise PluginNotFound(group, name, list(eps))
    try:
        cls = eps[name].load()
    except Exception as exc:  # a broken third-party plugin must not take the daemon down with a traceback
        raise AiopsError(f"plugin {name!r} ({eps[name].value}) failed to import: {exc}") from exc
    protocol = _PROTOCOLS.get(group)
    if not isinstance(cls, type):
        raise AiopsError(f"plugin {name!r} ({eps[name].value}) is not a class")
    if protocol is not None:
        missing = [m for m in _required_methods(protocol) if not callable(getattr(cls, m, None))]
        if missing:
            raise AiopsError(f"plugin {name!r} ({eps[name].value}) lacks {', '.join(missing)}")
    return cls


def params_model(cls: type[Any]) -> type[BaseModel]:
    model = getattr(cls, "Params", None)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return model
    return NoParams


def build(group: str, name: str, params: Mapping[str, Any] | BaseModel | None = None) -> Any:
    """Load, validate parameters and construct a plugin instance."""
    cls = load(group, name)
    if not isinstance(params, BaseModel):
        params = params_model(cls).model_validate(dict(params or {}))
    return cls(**params.model_dump())


def describe(group: str) -> list[tuple[str, str, str]]:
    """(name, target, first docstring line) for each plugin of a group, for ``aiops plugins``."""
    rows = []
    for name, ep in sorted(available(group).items()):
        try:
            doc = (ep.load().__doc__ or "").strip().splitlines()
            summary = doc[0] if doc else ""
        except Exception as exc:
            summary = f"(failed to import: {exc})"
        rows.append((name, ep.value, summary))
    return rows


def _required_methods(protocol: type) -> list[str]:
    return [name for name, value in vars(protocol).items() if callable(value) and not name.startswith("_")]
