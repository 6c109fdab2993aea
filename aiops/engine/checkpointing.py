"""When and what detector state a check saves: rolling checkpoints of the series that changed.

Why rolling: a warmed ``default`` series is 217 KB of state, so a check over 10 000 series holds ~2 GB;
writing that in one go takes longer than a 10 s tick. A *round* instead starts every ``state.checkpoint``
seconds, notes the source's cursor and the series that changed since they were last saved, and writes
them slice by slice for at most ``budget`` seconds per tick (a quarter of the check's interval), so saving
never makes a check miss its schedule; on a slow disk a round simply spans more ticks. Only after the
round's last slice is written is the cursor committed.

Why that is safe: a series saved mid-round may already hold points that came after the round's cursor.
After a crash the source re-reads from the last committed cursor, and the per-series detectors skip every
point at or before the series' saved last timestamp, so each series resumes exactly where its saved state
stopped: the restarted daemon ends in the same state as one that never stopped. A detector that is not
per-series has no such guard, so its state is captured whole when the round starts, together with the
cursor, and saved with the round's last slice.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import structlog

from aiops.plugins import Detector
from aiops.store.checkpoints import WHOLE, Cursor, SeriesBlob
from aiops.store.state_codec import StateCodecError, decode_state, encode_state
from aiops.store.store import Store

log = structlog.get_logger("aiops.checkpoint")

SLICE = 32  # series written between two looks at the clock (at least one slice per tick: a round ends)


@dataclass
class _Round:
    cursor: Cursor
    pending: list[tuple[str, str]]  # (detector, series) still to write
    whole: list[SeriesBlob]  # whole-detector states captured with the cursor
    whole_digest: dict[str, bytes] = field(default_factory=dict)


@dataclass
class Checkpointer:
    """The checkpoint bookkeeping of one check (used from that check's tick, never concurrently)."""

    check: str
    store: Store
    every: float  # seconds between rounds; 0 saves everything on every tick
    budget: float | None = None  # seconds of writing per tick; None writes a whole round at once
    saved: dict[tuple[str, str], float | None] = field(default_factory=dict)  # version last written
    whole_digest: dict[str, bytes] = field(default_factory=dict)
    last_round_at: float = -math.inf
    _round: _Round | None = None

    # -- restore ---------------------------------------------------------------------------------------

    def load(self, detectors: Mapping[str, Detector]) -> int:
        """Restore every saved state of this check into ``detectors``; returns how many were loaded."""
        loaded = 0
        failed: dict[str, str] = {}
        self.saved.clear()
        self.whole_digest.clear()
        self._round = None
        for blob in self.store.iter_checkpoint(self.check):
            det = detectors.get(blob.detector)
            if det is None:
                continue
            try:
                state = decode_state(blob.state)
                if blob.series == WHOLE:
                    det.load_state_dict(state)
                    self.whole_digest[blob.detector] = _digest(blob.state)
                else:
                    det.load_series_state(blob.series, state)
                    self.saved[(blob.detector, blob.series)] = state.get("last_ts")
            except (StateCodecError, ValueError, KeyError, TypeError, AttributeError) as exc:
                failed.setdefault(blob.detector, str(exc))
                continue
            loaded += 1
        for key, error in failed.items():
            log.warning("saved detector state discarded", check=self.check, detector=key, error=error)
        return loaded

    # -- saving ----------------------------------------------------------------------------------------

    def tick(
        self, now: float, cursor: Cursor, detectors: Mapping[str, Detector], *, deadline: float | None = None
    ) -> int:
        """Called after each good tick: start a round when one is due, then write this tick's slice."""
        if self._round is None and now - self.last_round_at >= self.every:
            self.begin(now, cursor, detectors)
        return self.step(now, detectors, deadline=deadline)

    def begin(self, now: float, cursor: Cursor, detectors: Mapping[str, Detector]) -> None:
        """Start a round: note the cursor, what changed, and the whole states of non-series detectors."""
        pending: list[tuple[str, str]] = []
        whole: list[SeriesBlob] = []
        digests: dict[str, bytes] = {}
        for key, det in detectors.items():
            versions = det.series_versions()
            if versions is not None:
                saved = self.saved
                for series, version in versions.items():
                    if saved.get((key, series), _UNSEEN) != version:
                        pending.append((key, series))
            else:
                blob = encode_state(det.state_dict())
                digest = _digest(blob)
                if self.whole_digest.get(key) != digest:
                    whole.append(SeriesBlob(key, WHOLE, blob))
                    digests[key] = digest
        self._round = _Round(cursor=cursor, pending=pending, whole=whole, whole_digest=digests)
        self.last_round_at = now

    def step(self, now: float, detectors: Mapping[str, Detector], *, deadline: float | None = None) -> int:
        """Write slices of the round until ``deadline`` (monotonic; default: ``budget`` from now, or the
        whole round without a budget); the round's cursor is committed after its last slice. Returns the
        series written."""
        rnd = self._round
        if rnd is None:
            return 0
        if deadline is None and self.budget is not None:
            deadline = time.monotonic() + self.budget
        written = 0
        while True:
            take, rnd.pending = rnd.pending[:SLICE], rnd.pending[SLICE:]
            versions: dict[tuple[str, str], float | None] = {}
            last = not rnd.pending
            blobs = itertools.chain(self._encode(take, detectors, versions), rnd.whole if last else ())
            self.store.save_checkpoint(self.check, blobs, rnd.cursor if last else None, now)
            self.saved.update(versions)  # only once committed
            written += len(versions)
            if last:
                self.whole_digest.update(rnd.whole_digest)
                self._round = None
                return written
            if deadline is not None and time.monotonic() >= deadline:
                return written

    def flush(self, now: float, cursor: Cursor, detectors: Mapping[str, Detector], deadline: float) -> bool:
        """At shutdown or reload: finish the open round, then save everything since, until ``deadline``
        (monotonic). Returns True if the current cursor was committed; if not, what was written still
        counts and a restart re-reads the rest."""
        if self._round is not None:
            self.step(now, detectors, deadline=deadline)
            if self._round is not None:
                return False
        self.begin(now, cursor, detectors)
        self.step(now, detectors, deadline=deadline)
        return self._round is None

    def abandon(self) -> None:
        """Forget the open round (its cursor is never committed; the series it wrote stay valid)."""
        self._round = None

    def _encode(
        self,
        take: Iterable[tuple[str, str]],
        detectors: Mapping[str, Detector],
        versions: dict[tuple[str, str], float | None],
    ) -> Iterator[SeriesBlob]:
        """The states of ``take``, one at a time (noting each one's version in ``versions``)."""
        for key, series in take:
            det = detectors.get(key)
            if det is None:
                continue
            state = det.series_state(series)
            versions[(key, series)] = state.get("last_ts")
            yield SeriesBlob(key, series, encode_state(state))


_UNSEEN = object()


def _digest(blob: bytes) -> bytes:
    return hashlib.blake2b(blob, digest_size=16).digest()
