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

log = structlog.get_logger(__name__)


@dataclass
class CheckRuntime:
    """One check: its config and constructed source and detectors (name -> instance, in config order)."""

    config: CheckConfig
    source: Any
    detectors: dict[str, Any]
    # fresh instances of the source and detectors, for a check whose run was abandoned mid-way
    rebuild: Callable[[], tuple[Any, dict[str, Any]]] | None = None

    @property
    def name(self) -> str:
        return self.config.name


@dataclass
class Runtime:
    config: Config
    checks: dict[str, CheckRuntime] = field(default_factory=dict)
    notifiers: dict[str, Any] = field(default_factory=dict)

    def action_config(self, check: str, rung: int) -> ActionConfig | None:
        cr = self.checks.get(check)
        if cr is None or rung >= len(cr.config.policy.actions):
            return None
        return cr.config.policy.actions[rung]

    def remediation(self, check: str, rung: int) -> Any:
        """A fresh remediation instance for a ladder rung (cheap; keeps executions independent)."""
        action = self.action_config(check, rung)
        if action is None:
            raise AiopsError(f"check {check!r} has no action at rung {rung} any more (config changed?)")
        params = self.config.plugin_params[("checks", self._index(check), "policy", "actions", rung)]
        return plugins.build(plugins.REMEDIATIONS, action.type, params)

    def _index(self, check: str) -> int:
        for i, c in enumerate(self.config.settings.checks):
            if c.name == check:
                return i
        raise AiopsError(f"unknown check {check!r}")


def build_runtime(config: Config) -> Runtime:
    """Construct every plugin of a config; raises AiopsError naming the block that failed."""
    runtime = Runtime(config=config)
    for name, block in config.settings.notifiers.items():
        runtime.notifiers[name] = _build(config, plugins.NOTIFIERS, ("notifiers", name), block["type"])
    for i, check in enumerate(config.settings.checks):
        source, detectors = _build_check(config, i, warm=True)
        for k, action in enumerate(check.policy.actions):
            _build(config, plugins.REMEDIATIONS, ("checks", i, "policy", "actions", k), action.type)
        runtime.checks[check.name] = CheckRuntime(
            config=check, source=source, detectors=detectors, rebuild=partial(_build_check, config, i, warm=False)
        )
    return runtime


def _build_check(config: Config, i: int, *, warm: bool) -> tuple[Any, dict[str, Any]]:
    """The source and detectors (by key) of the ``i``-th check."""
    check = config.settings.checks[i]
    source = _build(config, plugins.SOURCES, ("checks", i, "source"), check.source["type"])
    detectors: dict[str, Any] = {}
    for j, block in enumerate(check.detectors):
        key = str(block["type"])
        if key in detectors:
            key = f"{key}#{j}"
        detector = _build(config, plugins.DETECTORS, ("checks", i, "detectors", j), block["type"])
        if warm:
            _warm_up(detector, f"checks.{i}.detectors.{j}")
        detectors[key] = detector
    return source, detectors


def _warm_up(detector: Any, where: str) -> None:
    """Compiled scorers compile (or load from their disk cache) now, not inside the first tick's timeout;
    a detector whose warm-up fails still runs (its first tick will show the same error, with context)."""
    warm_up = getattr(detector, "warm_up", None)
    if not callable(warm_up):
        return
    started = time.monotonic()
    try:
        warm_up()
    except Exception as exc:
        log.warning("detector warm-up failed", detector=where, error=str(exc))
        return
    log.debug("detector warmed up", detector=where, seconds=round(time.monotonic() - started, 3))


def _build(config: Config, group: str, path: tuple[Any, ...], name: str) -> Any:
    params: BaseModel = config.plugin_params[path]
    try:
        return plugins.build(group, name, params)
    except AiopsError:
        raise
    except Exception as exc:
        where = ".".join(str(p) for p in path)
        raise AiopsError(f"{config.path}: {where}: cannot start {name!r}: {exc}") from exc
