"""Detector checkpoints: binary and compact, rolling, and exact across a crash or an abandoned run.

Each scenario runs the real ``push`` source and the real ``default`` detector on a real SQLite store; a
"crash" is a runner dropped without its final checkpoint (everything it had is either committed in the
store or lost, as with ``kill -9``), and the comparison is bit for bit against a run that never stopped.
"""

from __future__ import annotations

import gc
import math
import threading
import time
import weakref
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import sqlalchemy as sa

from aiops.config.loader import parse_config
from aiops.engine import checks
from aiops.engine.checks import CheckRunner
from aiops.engine.runtime import CheckRuntime, build_runtime
from aiops.plugins import Detector
from aiops.store import schema
from aiops.store.records import EventKind, PushedEvent
from aiops.store.state_codec import StateCodecError, decode_state, encode_state
from aiops.store.store import Store
from aiops.types import Frame

SERIES = 40
EVERY = 10.0


def config_text(url: str, checkpoint: str, detector: str = "{type: default}") -> str:
    return f"""
state: {{checkpoint: {checkpoint}}}
checks:
  - name: fleet
    every: {EVERY:g}s
    timeout: 0.5s
    source: {{type: push, stream: fleet, store_url: "{url}"}}
    detectors: [{detector}]
    policy: {{}}
"""


class Run:
    """One daemon's worth of check state: a store, a runtime, a runner (re-creatable after a crash)."""

    def __init__(self, tmp_path: Path, name: str, checkpoint: str = "40s", detector: str = "{type: default}") -> None:
        self.url = f"sqlite:///{tmp_path}/{name}.db"
        self.store = Store(self.url)
        self.store.migrate()
        self.checkpoint, self.detector = checkpoint, detector
        self.start()

    def start(self) -> None:
        config = parse_config(config_text(self.url, self.checkpoint, self.detector), "test.yaml", env={})
        self.runtime = build_runtime(config).checks["fleet"]
        self.runner = CheckRunner(self.runtime, self.store, checkpoint_every=config.settings.state.checkpoint)

    def push_and_tick(self, tick: int) -> None:
        push(self, tick)
        result = self.runner.tick(1_000.0 + EVERY * tick + 0.5)
        assert result.outcome == "ok", result.error

    def detector_arrays(self) -> dict[str, bytes]:
        det = self.runner.runtime.detectors["default"]
        return {k: det.series_state(k)["scorer"]["state"].tobytes() for k in sorted(det.series_versions())}

    def saved_blobs(self) -> dict[str, bytes]:
        with self.store.tx() as conn:
            rows = conn.execute(sa.select(schema.series_state.c.series, schema.series_state.c.state)).all()
        return {r.series: decode_state(r.state)["scorer"]["state"].tobytes() for r in rows}


def push(run: Run, tick: int) -> None:
    """One point of every series at ``tick``, pushed without ticking."""
    now = 1_000.0 + EVERY * tick
    rows = [
        PushedEvent("fleet", EventKind.POINT, "m", now, _value(i, tick), labels={"i": str(i)}) for i in range(SERIES)
    ]
    run.store.append_events(rows, now)


def _value(i: int, tick: int) -> float:
    spike = 25.0 if (tick == 12 and i % 7 == 0) else 0.0
    return 10.0 + math.sin(tick / 9.0 + i) + 0.01 * ((tick * 7 + i) % 13) + spike


def test_codec_keeps_arrays_bit_for_bit_and_refuses_damage() -> None:
    st = np.array([1.5, math.nan, -math.inf, math.inf, 0.0, -0.0])
    blob = encode_state({"version": 2, "state": st, "nested": [{"p": np.arange(3, dtype="<i8")}], "x": None})
    back = decode_state(blob)
    assert back["state"].tobytes() == st.tobytes() and back["version"] == 2 and back["x"] is None
    assert back["nested"][0]["p"].tolist() == [0, 1, 2]
    assert len(blob) < st.nbytes + 200
    with pytest.raises(StateCodecError):
        decode_state(b"\x80\x04pickle")
    with pytest.raises(StateCodecError):
        decode_state(blob[:-3])
    evil = blob.replace(b'"<i8"', b'"|O8"')  # an object dtype would mean pickle: refused
    with pytest.raises(StateCodecError):
        decode_state(evil)


def test_a_restart_without_final_checkpoint_ends_bit_for_bit_like_an_uncrashed_run(tmp_path: Path) -> None:
    steady, crashed = Run(tmp_path, "steady"), Run(tmp_path, "crashed")
    crashed.runner.checkpointer.budget = 0.0  # one slice of 32 series per tick, as on a slow disk
    for tick in range(21):
        steady.push_and_tick(tick)
        crashed.push_and_tick(tick)
    # a round of 40 series in slices of 32 began at tick 20 (every 40 s): half written, its cursor uncommitted
    assert crashed.runner.checkpointer._round is not None
    crashed.start()  # kill -9: the new runner knows only what the store holds
    for tick in range(21, 30):
        steady.push_and_tick(tick)
        crashed.push_and_tick(tick)
    assert crashed.detector_arrays() == steady.detector_arrays()
    assert len(steady.detector_arrays()) == SERIES
    assert crashed.runner.cursor() == steady.runner.cursor()


def test_only_changed_series_are_saved_and_a_flush_commits_the_cursor(tmp_path: Path) -> None:
    run = Run(tmp_path, "flush", checkpoint="0s")  # 0: every tick writes what changed
    run.push_and_tick(0)
    assert len(run.saved_blobs()) == SERIES
    run.store.append_events([PushedEvent("fleet", EventKind.POINT, "m", 1011.0, 1.0, labels={"i": "3"})], 1011.0)
    assert run.runner.checkpointer.tick(1012.0, run.runner.cursor(), run.runtime.detectors) == 0  # nothing fed yet
    run.runner.tick(1012.0)
    assert run.runner.checkpointer.saved[("default", 'm{i="3"}')] == 1011.0
    assert run.runner.flush(1013.0, deadline=time.monotonic() + 60)
    row = run.store.load_check_state("fleet")
    assert row is not None and row.since == 1012.0 and row.detector_state == {}
    restored = Run(tmp_path, "flush", checkpoint="0s")
    restored.runner.restore()
    assert restored.detector_arrays() == run.detector_arrays()


def test_state_saved_as_json_by_the_previous_release_still_loads(tmp_path: Path) -> None:
    old = Run(tmp_path, "legacy", "0s")
    for tick in range(5):
        old.push_and_tick(tick)
    det = old.runtime.detectors["default"]
    with old.store.tx() as conn:
        conn.execute(sa.delete(schema.series_state))
    old.store.save_check_state(
        "fleet", 1_041.0, {"default": det.state_dict()}, old.runtime.source.state_dict(), 1_041.0
    )
    new = Run(tmp_path, "legacy", "0s")
    new.runner.restore()
    assert new.detector_arrays() == old.detector_arrays()
    new.push_and_tick(5)  # the first checkpoint rewrites it in binary form
    assert len(new.saved_blobs()) == SERIES
    saved = new.store.load_check_state("fleet")
    assert saved is not None and saved.detector_state == {}


class HangOnce:
    """A push source whose ``hang_on``-th collection hangs past the check's timeout, then returns."""

    def __init__(self, inner: Any, hang_on: int | None, release: threading.Event) -> None:
        self.inner, self.hang_on, self.release, self.calls = inner, hang_on, release, 0

    def collect(self, since: float | None, until: float) -> Frame:
        self.calls += 1
        frame: Frame = self.inner.collect(since, until)
        if self.calls == self.hang_on:
            self.release.wait(10)
        return frame

    def state_dict(self) -> dict[str, Any]:
        return dict(self.inner.state_dict())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state)


def _hanging(run: Run, hang_on: int | None, release: threading.Event) -> None:
    built = run.runtime

    def rebuild() -> tuple[Any, dict[str, Any]]:
        assert built.rebuild is not None
        source, detectors = built.rebuild()
        return HangOnce(source, None, release), detectors

    run.runtime = CheckRuntime(built.config, HangOnce(built.source, hang_on, release), built.detectors, rebuild)
    run.runner = CheckRunner(run.runtime, run.store, checkpoint_every=0.0)


def test_a_timed_out_run_is_cancelled_for_good(tmp_path: Path) -> None:
    release = threading.Event()
    steady, hung = Run(tmp_path, "steady", "0s"), Run(tmp_path, "hung", "0s")
    _hanging(steady, None, release)
    _hanging(hung, 4, release)
    for tick in range(3):
        steady.push_and_tick(tick)
        hung.push_and_tick(tick)
    now = 1_000.0 + EVERY * 3
    for run in (steady, hung):
        run.store.append_events([PushedEvent("fleet", EventKind.POINT, "m", now, 99.0, labels={"i": "0"})], now)
    assert steady.runner.tick(now + 0.5).outcome == "ok"
    late = hung.runtime.source
    assert hung.runner.tick(now + 0.5).outcome == "timeout"
    release.set()  # the abandoned call returns now: it must not touch anything any more
    for tick in range(4, 6):
        steady.push_and_tick(tick)
        hung.push_and_tick(tick)
    assert hung.runtime.source is not late  # the late call holds an instance nobody uses any more
    assert hung.saved_blobs() == steady.saved_blobs()
    assert hung.detector_arrays() == steady.detector_arrays()


class HangingDetector:
    """``default``, except that its ``hang_on``-th evaluation (of a frame, or of one part of it) hangs,
    then goes on updating its state."""

    def __init__(self, inner: Any, hang_on: int | None, release: threading.Event) -> None:
        self.inner, self.hang_on, self.release, self.calls = inner, hang_on, release, 0
        self.hung, self.finished = threading.Event(), threading.Event()

    def evaluate(self, frame: Frame) -> list[Any]:
        self.calls += 1
        if self.calls == self.hang_on:
            self.hung.set()
            self.release.wait(10)
        try:
            found: list[Any] = self.inner.evaluate(frame)
        finally:
            self.finished.set()
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _wrapped(run: Run) -> HangingDetector:
    return cast(HangingDetector, run.runtime.detectors["default"])


def _hanging_detectors(
    tmp_path: Path, hang_on: int, release: threading.Event, detector: str = "{type: default}"
) -> tuple[Run, Run]:
    """A steady run and one whose detector hangs on its ``hang_on``-th evaluation, saving on every tick."""
    steady, hung = Run(tmp_path, "steady", "0s", detector), Run(tmp_path, "hung", "0s", detector)
    for run, hang in ((steady, None), (hung, hang_on)):
        built = run.runtime
        build = built.rebuild  # not ``built`` itself: that would keep the first detectors alive
        assert build is not None

        def rebuild(build: Any = build) -> tuple[Any, dict[str, Any]]:
            source, detectors = build()
            return source, {"default": HangingDetector(detectors["default"], None, release)}

        detectors = {"default": cast(Detector, HangingDetector(built.detectors["default"], hang, release))}
        run.runtime = CheckRuntime(built.config, built.source, detectors, rebuild)
        run.runner = CheckRunner(run.runtime, run.store, checkpoint_every=0.0)
    return steady, hung


def test_a_run_stuck_inside_a_detector_comes_back_from_the_checkpoint(tmp_path: Path) -> None:
    release = threading.Event()
    steady, hung = _hanging_detectors(tmp_path, 3, release)
    for tick in range(2):
        steady.push_and_tick(tick)
        hung.push_and_tick(tick)
    now = 1_000.0 + EVERY * 2
    for run in (steady, hung):
        row = PushedEvent("fleet", EventKind.POINT, "m", now, 50.0, labels={"i": "1"})
        run.store.append_events([row], now)
    assert steady.runner.tick(now + 0.5).outcome == "ok"
    late = _wrapped(hung)
    assert hung.runner.tick(now + 0.5).outcome == "timeout"
    steady.push_and_tick(3)
    hung.push_and_tick(3)  # the late run is still stuck inside its detector: restored from the checkpoint
    release.set()  # the late run feeds its frame to its detector, which no tick uses any more
    assert late.finished.wait(10)
    steady.push_and_tick(4)
    hung.push_and_tick(4)
    assert _wrapped(hung) is not late
    assert hung.saved_blobs() == steady.saved_blobs()
    assert hung.detector_arrays() == steady.detector_arrays()


def test_a_first_run_that_times_out_restores_fresh_and_holds_nothing_old(tmp_path: Path) -> None:
    """The first tick over new series overruns its timeout before anything was ever checkpointed: the
    next tick starts from fresh detectors (nothing to copy), ends like a run without the abandoned one, and
    once the late run has ended nothing keeps its detectors alive."""
    release = threading.Event()
    steady, hung = _hanging_detectors(tmp_path, 1, release)
    now = 1_000.0
    push(steady, 0)
    push(hung, 0)
    assert steady.runner.tick(now + 0.5).outcome == "ok"
    late = _wrapped(hung)
    assert hung.runner.tick(now + 0.5).outcome == "timeout"
    assert hung.saved_blobs() == {}  # never checkpointed
    steady.push_and_tick(1)
    hung.push_and_tick(1)  # still stuck: the detectors start fresh, the source re-reads from the start
    assert _wrapped(hung) is not late
    old = weakref.ref(late.inner)
    release.set()
    assert late.finished.wait(10)
    del late
    for tick in range(2, 4):
        steady.push_and_tick(tick)
        hung.push_and_tick(tick)
    gc.collect()
    assert old() is None  # the abandoned generation's state is gone
    assert hung.saved_blobs() == steady.saved_blobs()
    assert hung.detector_arrays() == steady.detector_arrays()
    assert len(hung.detector_arrays()) == SERIES


def test_a_run_abandoned_between_parts_keeps_what_it_finished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow (not stuck) tick over many series: the late run stops at the end of the part it is in, the
    next tick keeps those series (no restore, no second copy of the detectors) and reports the findings the
    late run found; findings and state end like a run without the timeout."""
    monkeypatch.setattr(checks, "PART", 8)  # 40 series: 5 parts
    release = threading.Event()
    slow = 2  # this tick's 2nd part hangs
    # threshold 0: every series has a finding on every tick, so each lost or doubled point would show
    steady, hung = _hanging_detectors(tmp_path, 5 * slow + 2, release, "{type: default, threshold: 0.0}")
    for tick in range(slow):
        steady.push_and_tick(tick)
        hung.push_and_tick(tick)
    now = 1_000.0 + EVERY * slow
    push(steady, slow)
    push(hung, slow)
    expected = steady.runner.tick(now + 0.5).findings
    kept = _wrapped(hung)
    assert hung.runner.tick(now + 0.5).outcome == "timeout"
    assert kept.hung.is_set()
    release.set()  # the late run finishes its 2nd part and stops: parts 3-5 stay untouched
    late = hung.runner._late  # wait until it has stopped, not only left the hung part (a loaded machine)
    assert kept.finished.wait(10) and late is not None and late.wait(10)
    push(steady, slow + 1)
    push(hung, slow + 1)
    expected += steady.runner.tick(now + EVERY + 0.5).findings
    result = hung.runner.tick(now + EVERY + 0.5)
    assert result.outcome == "ok"
    assert _wrapped(hung) is kept  # the same instances: nothing restored, nothing copied
    found = [(f.labels["i"], f.observed_at) for f in result.findings]
    assert len(set(found)) == len(found) and set(found) <= {(f.labels["i"], f.observed_at) for f in expected}
    per_series = {str(i): sum(1 for key, _ in found if key == str(i)) for i in range(SERIES)}
    # parts 1-2: the late run's finding and this tick's; parts 3-5 were handed both points at once: one
    # finding for the two (a detector reports the worst new point of a series per evaluation)
    assert per_series == {str(i): 2 if i < 16 else 1 for i in range(SERIES)}
    for tick in range(slow + 2, slow + 4):
        steady.push_and_tick(tick)
        hung.push_and_tick(tick)
    assert hung.saved_blobs() == steady.saved_blobs()
    assert hung.detector_arrays() == steady.detector_arrays()
