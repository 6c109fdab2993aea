"""Turns a validated :class:`~aiops.config.loader.Config` into live plugin instances.

Kept apart from the scheduler so that a reload can build the new runtime completely, and only swap it in
once every plugin constructed without error: an invalid new config never replaces a working one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import structlog
from pydantic import BaseModel

from aiops import plugins
from aiops.config.loader import Config
from aiops.config.models import ActionConfig, CheckConfig
from aiops.errors import AiopsError
from aiops.plugins import Detector, Notifier, Plugin, PluginContext, Remediation, Source
from aiops.types import IncidentView, Plan

log = structlog.get_logger(__name__)


@dataclass
class CheckRuntime:
    """One check: its config and constructed source and detectors (name -> instance, in config order)."""

    config: CheckConfig
    source: Source
    detectors: dict[str, Detector]
    # fresh instances of the source and detectors, for a check whose run was abandoned mid-way
    rebuild: Callable[[], tuple[Source, dict[str, Detector]]] | None = None

    @property
    def name(self) -> str:
        return self.config.name

    def stop(self) -> None:
        """Stop the check's source and detectors (idempotent, like every plugin's ``stop``)."""
        _stop_all([("source", self.source), *self.detectors.items()], self.name)


@dataclass
class Runtime:
    config: Config
    checks: dict[str, CheckRuntime] = field(default_factory=dict)
    notifiers: dict[str, Notifier] = field(default_factory=dict)
    context: PluginContext | None = None  # what every plugin of this runtime is started with

    def stop(self) -> None:
        """Stop every long-lived plugin (at shutdown, or when a reload replaced this runtime); a plugin that
        fails to stop is logged, and the others still stop."""
        _stop_all(list(self.notifiers.items()), "notifiers")
        for check in self.checks.values():
            check.stop()

    def action_config(self, check: str, rung: int) -> ActionConfig | None:
        cr = self.checks.get(check)
        if cr is None or rung >= len(cr.config.policy.actions):
            return None
        return cr.config.policy.actions[rung]

    def remediation(self, check: str, rung: int) -> Remediation:
        """A fresh remediation instance for a ladder rung (cheap; keeps executions independent), started
        with the runtime's context; the caller stops it when done."""
        action = self.action_config(check, rung)
        if action is None:
            raise AiopsError(f"check {check!r} has no action at rung {rung} any more (config changed?)")
        params = self.config.plugin_params[("checks", self._index(check), "policy", "actions", rung)]
        remediation: Remediation = plugins.build(plugins.REMEDIATIONS, action.type, params, context=self.context)
        return remediation

    def plan(self, check: str, rung: int, incident: IncidentView) -> Plan:
        """The plan of a ladder rung for an incident (plans are pure: the instance is stopped at once)."""
        remediation = self.remediation(check, rung)
        try:
            return remediation.plan(incident)
        finally:
            remediation.stop()

    def _index(self, check: str) -> int:
        for i, c in enumerate(self.config.settings.checks):
            if c.name == check:
                return i
        raise AiopsError(f"unknown check {check!r}")


def build_runtime(config: Config, context: PluginContext | None = None) -> Runtime:
    """Construct every plugin of a config, started with ``context`` (the daemon's; a standalone one in
    state_dir when None); raises AiopsError naming the block that failed."""
    if context is None:
        context = PluginContext.standalone(config.settings.state_dir)
    runtime = Runtime(config=config, context=context)
    for name, block in config.settings.notifiers.items():
        runtime.notifiers[name] = _build(config, plugins.NOTIFIERS, ("notifiers", name), block["type"], context)
    for i, check in enumerate(config.settings.checks):
        source, detectors = _build_check(config, i, context, warm=True)
        for k, action in enumerate(check.policy.actions):
            _build(config, plugins.REMEDIATIONS, ("checks", i, "policy", "actions", k), action.type, None)
        runtime.checks[check.name] = CheckRuntime(
            config=check,
            source=source,
            detectors=detectors,
            rebuild=partial(_build_check, config, i, context, warm=False),
        )
    return runtime


def _build_check(
    config: Config, i: int, context: PluginContext, *, warm: bool
) -> tuple[Source, dict[str, Detector]]:
    """The source and detectors (by key) of the ``i``-th check, started."""
    check = config.settings.checks[i]
    source: Source = _build(config, plugins.SOURCES, ("checks", i, "source"), check.source["type"], context)
    detectors: dict[str, Detector] = {}
    for j, block in enumerate(check.detectors):
        key = str(block["type"])
        if key in detectors:
            key = f"{key}#{j}"
        detector: Detector = _build(config, plugins.DETECTORS, ("checks", i, "detectors", j), block["type"], context)
        if warm:
            _warm_up(detector, f"checks.{i}.detectors.{j}")
        detectors[key] = detector
    return source, detectors


def _stop_all(owned: list[tuple[str, Plugin]], where: str) -> None:
    """Stop each plugin; one that fails to stop is logged, and the others still stop."""
    for name, plugin in owned:
        try:
            plugin.stop()
        except Exception as exc:
            log.warning("plugin did not stop cleanly", plugin=f"{where}.{name}", error=str(exc))


def _warm_up(detector: Detector, where: str) -> None:
    """Compiled scorers compile (or load from their disk cache) now, not inside the first tick's timeout;
    a detector whose warm-up fails still runs (its first tick will show the same error, with context)."""
    started = time.monotonic()
    try:
        detector.warm_up()
    except Exception as exc:
        log.warning("detector warm-up failed", detector=where, error=str(exc))
        return
    log.debug("detector warmed up", detector=where, seconds=round(time.monotonic() - started, 3))


def _build(config: Config, group: str, path: tuple[Any, ...], name: str, context: PluginContext | None) -> Any:
    """One plugin, built from its validated block and started with ``context`` (None: only checked)."""
    params: BaseModel = config.plugin_params[path]
    try:
        return plugins.build(group, name, params, context=context)
    except AiopsError:
        raise
    except Exception as exc:
        where = ".".join(str(p) for p in path)
        raise AiopsError(f"{config.path}: {where}: cannot start {name!r}: {exc}") from exc
