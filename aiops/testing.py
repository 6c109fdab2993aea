"""Fakes and contract checks shipped with the package, for our tests and for plugin authors' tests.

``FakeClock`` lets a 10-minute scenario run in milliseconds; ``RecordingRemediation`` and
``CapturingNotifier`` are real plugins (registered nowhere by default) that remember what they were asked to
do; ``check_*`` run the contract every plugin of a kind must satisfy, and the test suite runs them over
every installed entry point, third-party ones included.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from aiops import plugins
from aiops.errors import DeliveryError
from aiops.store.records import Incident
from aiops.types import ActionContext, Delivery, Frame, IncidentView, Message, Outcome, Plan


def incident_record(**fields: object) -> Incident:
    """A stored-looking incident for building messages in a test (a notifier's, say) without a store: every
    column has a plausible default, ``fields`` override them (by column name)."""
    row: dict[str, object] = {
        "id": 1,
        "fingerprint": "fp",
        "check_name": "check",
        "labels": {},
        "state": "firing",
        "severity": "warning",
        "kind": "detector:threshold",
        "summary": "",
        "evidence": {},
        "opened_at": 0.0,
        "updated_at": 0.0,
        "firing_at": None,
        "resolved_at": None,
        "last_seen_at": 0.0,
        "rung": 0,
        "attempts": 0,
        "verify_started_at": None,
        "verify_deadline": None,
        "healthy_ticks": 0,
        "acknowledged_by": None,
        "silenced_until": None,
        "guard_note": None,
        "notified_firing": False,
    }
    unknown = set(fields) - set(row)
    if unknown:
        raise TypeError(f"not incident columns: {sorted(unknown)}")
    row.update(fields)
    return Incident.from_row(row)


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += seconds
            return self._now


class RecordingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: str = "recording"
    fail: bool = False


class RecordingRemediation:
    """A remediation that records its executions (class-wide, so tests can read them) and does nothing else."""

    Params: ClassVar[type[BaseModel]] = RecordingParams
    executions: ClassVar[list[tuple[str, int]]] = []

    def __init__(self, *, target: str = "recording", fail: bool = False) -> None:
        self.target = target
        self.fail = fail

    def plan(self, incident: IncidentView) -> Plan:
        return Plan(action="recording", description=f"record incident {incident.id}", target=self.target)

    def execute(self, plan: Plan, ctx: ActionContext) -> Outcome:
        ctx.save_handle({"recorded": True})
        RecordingRemediation.executions.append((ctx.idempotency_key, ctx.incident.id))
        return Outcome(ok=not self.fail, summary="recorded" if not self.fail else "told to fail")

    def resume(self, plan: Plan, ctx: ActionContext) -> Outcome | None:
        return Outcome(ok=not self.fail, summary="resumed")


class CapturingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fail_times: int = 0


class CapturingNotifier:
    """A notifier that keeps every message; can be told to fail the first N sends (recoverably)."""

    Params: ClassVar[type[BaseModel]] = CapturingParams

    def __init__(self, *, fail_times: int = 0) -> None:
        self.fail_times = fail_times
        self.messages: list[Message] = []

    def send(self, message: Message) -> Delivery:
        if self.fail_times > 0:
            self.fail_times -= 1
            raise DeliveryError("receiver down (test)", recoverable=True, reason="test")
        self.messages.append(message)
        return Delivery(receiver="capture")


# -- contract checks ---------------------------------------------------------------------------------------


def _instantiate(cls: type[Any], params: Mapping[str, Any] | None) -> Any:
    model = plugins.params_model(cls)
    return cls(**model.model_validate(dict(params or {})).model_dump())


def check_plugin_class(group: str, cls: type[Any]) -> None:
    """What every plugin of every kind must have: a Params model, a docstring, the kind's methods."""
    assert cls.__doc__ and cls.__doc__.strip(), f"{cls.__name__} needs a docstring (shown by `aiops plugins`)"
    model = plugins.params_model(cls)
    assert issubclass(model, BaseModel)
    required = {
        plugins.SOURCES: ["collect"],
        plugins.DETECTORS: ["evaluate", "state_dict", "load_state_dict"],
        plugins.REMEDIATIONS: ["plan", "execute", "resume"],
        plugins.NOTIFIERS: ["send"],
    }[group]
    for method in required:
        assert callable(getattr(cls, method, None)), f"{cls.__name__} lacks {method}()"


def check_detector(cls: type[Any], params: Mapping[str, Any] | None = None) -> None:
    """A detector copes with an empty frame, and its state round-trips through JSON."""
    check_plugin_class(plugins.DETECTORS, cls)
    det = _instantiate(cls, params)
    assert det.evaluate(Frame(source="test", collected_at=0.0)) == []
    state = det.state_dict()
    json.dumps(state)
    again = _instantiate(cls, params)
    again.load_state_dict(json.loads(json.dumps(state)))


class ScriptedParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: str = "default"
    series: str = "value"
    hang_seconds: float = 0.0


class ScriptedSource:
    """A source whose points a test pushes in (``ScriptedSource.push(channel, ts, value)``); can hang."""

    Params: ClassVar[type[BaseModel]] = ScriptedParams
    _queues: ClassVar[dict[str, list[tuple[float, float]]]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, *, channel: str = "default", series: str = "value", hang_seconds: float = 0.0) -> None:
        self.channel = channel
        self.series = series
        self.hang_seconds = hang_seconds

    @classmethod
    def push(cls, channel: str, timestamp: float, value: float) -> None:
        with cls._lock:
            cls._queues.setdefault(channel, []).append((timestamp, value))

    @classmethod
    def reset(cls) -> None:
        with cls._lock:
            cls._queues.clear()

    def collect(self, since: float | None, until: float) -> Frame:
        from aiops.types import Series

        if self.hang_seconds:
            threading.Event().wait(self.hang_seconds)
        with self._lock:
            points = self._queues.pop(self.channel, [])
        return Frame(
            source="scripted",
            collected_at=until,
            series=(Series(self.series, [p[0] for p in points], [p[1] for p in points]),) if points else (),
        )


TEST_PLUGINS: dict[str, dict[str, str]] = {
    plugins.SOURCES: {"scripted": "aiops.testing:ScriptedSource"},
    plugins.REMEDIATIONS: {"recording": "aiops.testing:RecordingRemediation"},
    plugins.NOTIFIERS: {"capture": "aiops.testing:CapturingNotifier"},
}


def register_test_plugins() -> None:
    """Make the fakes resolvable by name, as if a package had registered them (undo with ``unregister``)."""
    from importlib.metadata import EntryPoint

    for group, entries in TEST_PLUGINS.items():
        for name, value in entries.items():
            plugins.available(group)[name] = EntryPoint(name=name, value=value, group=group)


def unregister_test_plugins() -> None:
    for group, entries in TEST_PLUGINS.items():
        for name in entries:
            plugins.available(group).pop(name, None)
