"""Fakes and contract checks shipped with the package, for our tests and for plugin authors' tests.

``FakeClock`` lets a 10-minute scenario run in milliseconds; ``RecordingRemediation`` and
``CapturingNotifier`` are real plugins (registered nowhere by default) that remember what they were asked to
do; ``check_*`` run the contract every plugin of a kind must satisfy, and the test suite runs them over
every installed entry point, third-party ones included.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from aiops import plugins
from aiops.errors import AiopsError, DeliveryError, InvalidParams, SourceError
from aiops.plugins import PluginContext
from aiops.plugins.base import validated
from aiops.store.records import Incident
from aiops.types import (
    ActionContext,
    Delivery,
    Frame,
    IncidentState,
    IncidentView,
    Message,
    Outcome,
    Plan,
    Series,
    Severity,
)


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


class RecordingRemediation(plugins.Remediation):
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


class CapturingNotifier(plugins.Notifier):
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
#
# river runs the same generic checks over every estimator; these are aiops's, run by the test suite over every
# registered entry point (third-party ones included), each with every parameter set the plugin declares in
# ``test_params()``. A plugin author runs ``check_plugin(group, MyPlugin)`` in their own tests.

_KIND_BASES: dict[str, type[plugins.Plugin]] = {
    plugins.SOURCES: plugins.Source,
    plugins.DETECTORS: plugins.Detector,
    plugins.REMEDIATIONS: plugins.Remediation,
    plugins.NOTIFIERS: plugins.Notifier,
}


def check_plugin(group: str, cls: type[Any], state_dir: str | Path) -> int:
    """Every contract check of ``cls`` as a plugin of ``group``, for each of its test parameter sets;
    returns the number of parameter sets checked (at least one: a plugin cannot opt out)."""
    check_plugin_class(group, cls)
    sets = cls.test_params()
    for params in sets:
        check_params(group, cls, params)
        check_lifecycle(group, cls, params, PluginContext.standalone(state_dir))
        if group == plugins.DETECTORS:
            check_detector(cls, params)
        elif group == plugins.SOURCES:
            check_source(cls, params, state_dir)
        elif group == plugins.REMEDIATIONS:
            check_remediation(cls, params)
        elif group == plugins.NOTIFIERS:
            check_notifier(cls, params)
    return len(sets)


def check_plugin_class(group: str, cls: type[Any]) -> None:
    """What every plugin of every kind must have: its kind's base class, a docstring, a Params model that
    refuses unknown keys, and at least one test parameter set."""
    base = _KIND_BASES[group]
    assert isinstance(cls, type) and issubclass(cls, base), f"{cls!r} must subclass {base.__module__}.{base.__name__}"
    assert not getattr(cls, "__abstractmethods__", None), f"{cls.__name__} leaves {set(cls.__abstractmethods__)}"
    assert cls.__doc__ and cls.__doc__.strip(), f"{cls.__name__} needs a docstring (shown by `aiops plugins`)"
    model = plugins.params_model(cls)
    assert issubclass(model, BaseModel)
    assert model.model_config.get("extra") == "forbid", f"{model.__name__} must forbid unknown keys (a typo)"
    sets = cls.test_params()
    assert isinstance(sets, list) and sets and all(isinstance(p, dict) for p in sets), (
        f"{cls.__name__}.test_params() must return a non-empty list of parameter dicts"
    )


def check_params(group: str, cls: type[Any], params: Mapping[str, Any]) -> None:
    """The registry builds the plugin from ``params`` (validating them once), direct construction agrees,
    and an unknown parameter is refused with an error that names it."""
    name = cls.__name__
    built = _build(group, cls, params)
    assert isinstance(built, cls)
    direct = cls(**params)
    got, want = getattr(direct, "params", None), getattr(built, "params", None)
    if isinstance(want, BaseModel):
        assert got == want, f"{name}: built and directly constructed parameters differ"
    try:
        _build(group, cls, {**params, "no_such_parameter": 1})
    except InvalidParams as exc:
        assert "no_such_parameter" in str(exc), f"{name}: the error must name the bad parameter: {exc}"
    else:
        raise AssertionError(f"{name} accepted an unknown parameter")


def check_lifecycle(group: str, cls: type[Any], params: Mapping[str, Any], ctx: PluginContext) -> None:
    """``start`` hands over the context, ``stop`` is safe twice and on a plugin that was never started."""
    never_started = _build(group, cls, params)
    never_started.stop()
    plugin = _build(group, cls, params)
    plugin.start(ctx)
    plugin.start(ctx)
    assert plugin.context is ctx, f"{cls.__name__}.start() must keep the context (call super().start(ctx))"
    plugin.stop()
    plugin.stop()


def check_detector(cls: type[Any], params: Mapping[str, Any] | None = None) -> None:
    """A detector copes with an empty frame and its state round-trips through the daemon's checkpoint codec;
    a per-series detector also finds the same after a restore (whole or series by series) as without one,
    and its scorer's batch path equals its point-by-point path."""
    from aiops.store.state_codec import decode_state, encode_state

    def restored(state: Mapping[str, Any]) -> Any:
        det = _build(plugins.DETECTORS, cls, params or {})
        det.load_state_dict(decode_state(encode_state(dict(state))))
        return det

    det = _build(plugins.DETECTORS, cls, params or {})
    assert det.evaluate(Frame(source="test", collected_at=0.0)) == []
    restored(det.state_dict())
    if not hasattr(cls, "new_scorer"):
        return
    first, second = _series_frames()
    det.evaluate(first)
    whole = restored(det.state_dict())
    versions = det.series_versions()
    by_series = _build(plugins.DETECTORS, cls, params or {})
    for key in versions or {}:
        by_series.load_series_state(key, decode_state(encode_state(det.series_state(key))))
    expected = det.evaluate(second)
    assert whole.evaluate(second) == expected, f"{cls.__name__}: findings differ after a state round trip"
    if versions is not None:
        assert by_series.evaluate(second) == expected, f"{cls.__name__}: findings differ after a per-series restore"
    from aiops.detection import batch_score

    series = first.series[0]
    stream = det.new_scorer()
    one_by_one = [stream.update(float(t), float(v)) for t, v in zip(series.timestamps, series.values, strict=True)]
    batch = batch_score(det.new_scorer(), series.timestamps, series.values)
    assert [round(float(x), 9) for x in batch] == [round(float(x), 9) for x in one_by_one], (
        f"{cls.__name__}: the batch score differs from the streaming one"
    )


def check_source(cls: type[Any], params: Mapping[str, Any], workdir: str | Path) -> None:
    """A source's incremental state is JSON and loads back, and a collection (in ``workdir``, where relative
    test paths point at nothing, against test URLs nobody answers) returns a frame or raises SourceError:
    bad telemetry or an absent system is reported, never a crash."""
    source = _build(plugins.SOURCES, cls, params)
    state = json.loads(json.dumps(source.state_dict()))
    _build(plugins.SOURCES, cls, params).load_state_dict(state)
    started = _build(plugins.SOURCES, cls, params)
    started.start(PluginContext.standalone(workdir))
    with contextlib.chdir(workdir):
        try:
            frame = started.collect(None, 1_700_000_000.0)
        except SourceError as exc:
            assert isinstance(exc.recoverable, bool)
        else:
            assert isinstance(frame, Frame), f"{cls.__name__}.collect() returned {type(frame).__name__}"
        finally:
            started.stop()


def check_remediation(cls: type[Any], params: Mapping[str, Any]) -> None:
    """``plan`` is pure: the same incident gives the same plan, with an action and a target (the blast-radius
    budget counts targets), or a refusal that says why."""
    remediation = _build(plugins.REMEDIATIONS, cls, params)
    labels = {"series": "latency", "namespace": "ml"}
    incident = IncidentView(1, "fp", "check", IncidentState.FIRING, Severity.WARNING, "latency high", labels, 1.7e9)
    try:
        plan = remediation.plan(incident)
    except AiopsError:
        return  # refused, with a message: what the policy shows on the incident
    assert isinstance(plan, Plan) and plan.action and plan.target, f"{cls.__name__}.plan() gave {plan!r}"
    assert remediation.plan(incident) == plan, f"{cls.__name__}.plan() is not pure"


def check_notifier(cls: type[Any], params: Mapping[str, Any]) -> None:
    """The outbox's pacing hooks are non-negative seconds."""
    notifier = _build(plugins.NOTIFIERS, cls, params)
    assert float(notifier.min_interval) >= 0.0 and float(notifier.resend_interval) >= 0.0


def _build(group: str, cls: type[Any], params: Mapping[str, Any]) -> Any:
    """``plugins.build`` for a class that may not be registered under any name (a plugin author's tests)."""
    try:
        model = plugins.params_model(cls).model_validate(dict(params))
    except ValidationError as exc:
        raise InvalidParams(group, cls.__name__, plugins.validation_problems(exc)) from None
    with validated(model):
        return cls(**model.model_dump())


def _series_frames() -> tuple[Frame, Frame]:
    """Two consecutive collections of two noisy series with a level shift and a spike: enough for every
    per-series detector to learn, and to fire."""
    import numpy as np

    rng = np.random.default_rng(7)
    t = np.arange(400, dtype=float) * 60.0 + 1_700_000_000.0
    frames: list[list[Series]] = [[], []]
    for name, level in (("latency", 100.0), ("errors", 5.0)):
        x = level + rng.normal(0.0, level * 0.05, t.size)
        x[300:] += level * 0.5
        x[350] += level * 3
        for half, part in enumerate((slice(0, 250), slice(250, None))):
            frames[half].append(Series(name, tuple(t[part]), tuple(x[part]), {"host": "a"}))
    return (
        Frame(source="test", collected_at=float(t[249]), series=tuple(frames[0])),
        Frame(source="test", collected_at=float(t[-1]), series=tuple(frames[1])),
    )


class ScriptedParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: str = "default"
    series: str = "value"
    hang_seconds: float = 0.0


class ScriptedSource(plugins.Source):
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
