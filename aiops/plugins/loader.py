"""The one loader that finds every plugin through entry points, checks its base class and builds it.

Built-ins are registered in ``pyproject.toml`` exactly like a third-party package would register its own,
so the daemon never imports ``aiops_detectors`` or ``aiops_remediations`` directly. A plugin is a class
subclassing its kind's base class (:mod:`aiops.plugins.source`, ``detector``, ``remediation``,
``notifier``), with a pydantic ``Params`` model (its configuration, validated once, with line numbers, by the
config loader or :func:`build`) and a keyword-only constructor taking those parameters, scikit-learn style:
the constructor stores, the methods work.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import BaseModel, ValidationError

from aiops.errors import AiopsError, InvalidParams, PluginNotFound
from aiops.plugins.base import NoParams, Plugin, validated
from aiops.plugins.context import PluginContext
from aiops.plugins.detector import Detector
from aiops.plugins.notifier import Notifier
from aiops.plugins.remediation import Remediation
from aiops.plugins.source import Source

SOURCES = "aiops.sources"
DETECTORS = "aiops.detectors"
REMEDIATIONS = "aiops.remediations"
NOTIFIERS = "aiops.notifiers"
GROUPS = (SOURCES, DETECTORS, REMEDIATIONS, NOTIFIERS)


_BASES: dict[str, type[Plugin]] = {
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
    base = _BASES.get(group)
    if base is not None and not (isinstance(cls, type) and issubclass(cls, base)):
        raise AiopsError(
            f"plugin {name!r} ({eps[name].value}) is not a {base.__module__}.{base.__name__} subclass"
        )
    abstract = sorted(getattr(cls, "__abstractmethods__", ()))
    if abstract:
        raise AiopsError(f"plugin {name!r} ({eps[name].value}) does not implement {', '.join(abstract)}")
    plugin: type[Any] = cls
    return plugin


def params_model(cls: type[Any]) -> type[BaseModel]:
    model = getattr(cls, "Params", None)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return model
    return NoParams


def build(
    group: str,
    name: str,
    params: Mapping[str, Any] | BaseModel | None = None,
    *,
    context: PluginContext | None = None,
) -> Any:
    """Load, validate parameters (the one validation: the constructor receives the validated model) and
    construct a plugin instance; started with ``context`` when one is given."""
    cls = load(group, name)
    if not isinstance(params, BaseModel):
        try:
            params = params_model(cls).model_validate(dict(params or {}))
        except ValidationError as exc:
            raise InvalidParams(group, name, validation_problems(exc)) from None
    with validated(params):
        plugin = cls(**params.model_dump())
    if context is not None:
        plugin.start(context)
    return plugin


def validation_problems(exc: ValidationError) -> list[str]:
    """One ``where: what`` line per problem of a parameter validation (``params`` for the whole model)."""
    return [f"{'.'.join(str(p) for p in err['loc']) or 'params'}: {err['msg']}" for err in exc.errors()]


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

