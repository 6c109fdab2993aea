"""Many series' scorer states as rows of a few arrays, so a daemon tick is a few compiled calls for all of them.

The compiled detectors (``default``, ``knn``'s k=1 path, ``bocpd``) keep a scorer's whole state in one flat
``float64`` array; stacking those arrays lets the usual tick, one new point for each of thousands of series,
run as one kernel call instead of one Python call per series.
"""

from __future__ import annotations

import copy
import itertools
import math
import mmap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import numpy as np

from aiops.detection import Scorer as SeriesScorer
from aiops.detection import SeriesDetector
from aiops.types import Finding, Frame
from aiops_detectors.anomaly._base import ScorerBase


class KernelScorer(ScorerBase):
    """A scorer whose whole state is one flat ``float64`` array ``st``, updated by a compiled ``kernel``
    module (``step(st, p, x)``, ``run(st, p, xs, out)``) under the parameter vector ``p``; ``row`` is its row
    in a :class:`StateBank` once banked. ``update`` and ``score`` call the same compiled step, so batch
    equals streaming exactly."""

    kernel: ClassVar[Any]
    p: np.ndarray
    st: np.ndarray
    row: int | None = None

    def _update(self, t: float, x: float) -> float:
        return float(self.kernel.step(self.st, self.p, x))

    def score(self, timestamps: Sequence[float], values: Sequence[float]) -> np.ndarray:
        """The whole series inside the kernel; a point with a non-finite time or value scores 0, untouched."""
        xs = np.array(values, dtype=float)
        xs[~np.isfinite(np.asarray(timestamps, dtype=float))] = math.nan
        out = np.empty(len(xs))
        self.kernel.run(self.st, self.p, xs, out)
        return out

    def bankable(self) -> bool:
        """Whether ``st`` is the whole state, so a :class:`StateBank` can hold it; a scorer that also keeps
        state in Python is left out of the bank and scored on its own, point by point."""
        return True

    def state_fields(self) -> dict[str, Any]:
        """The state with its numeric vectors (``params``, ``state``) as numpy arrays; subclasses say which."""
        raise NotImplementedError

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore from :meth:`state_dict` or :meth:`state_arrays`; subclasses check their own layout."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """JSON-safe: the arrays of :meth:`state_fields` as lists (non-finite values as None)."""
        return {k: self.flat_to_json(v) if isinstance(v, np.ndarray) else v for k, v in self.state_fields().items()}

    def state_arrays(self) -> dict[str, Any]:
        """For binary checkpoints: the arrays copied as they are, NaN and infinities included."""
        return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in self.state_fields().items()}

    @staticmethod
    def flat_to_json(st: np.ndarray) -> list[float | None]:
        """JSON has no NaN or infinities: they travel as None (each kernel knows which one it stores)."""
        return [v if math.isfinite(v) else None for v in st.tolist()]

    @staticmethod
    def flat_from_json(values: Sequence[float | None] | np.ndarray, missing: float) -> np.ndarray:
        """A state vector from JSON (None stands for ``missing``) or, from a binary checkpoint, as it is."""
        if isinstance(values, np.ndarray):
            return np.array(values, dtype=float)
        return np.asarray([missing if v is None else v for v in values], dtype=float)


class StateBank:
    """The states of many scorers as the rows of a few 2-D blocks, so that a daemon tick over thousands of
    series is a few kernel calls rather than thousands of Python calls (each scorer's ``st`` is a view of
    its row, so streaming, batch and tick all update the same numbers). A :class:`KernelScorer` is banked if it is
    ``bankable()``, its ``p`` equals the bank's parameters and its ``st`` is ``width`` long; ``row`` then
    says where.

    Why blocks of ``BLOCK`` rows rather than one array grown by doubling: a warmed ``default`` row is
    217 KB, so 10 000 series are 2.2 GB, and growing one array means holding the old and the new copy at
    once (3.5 GB at the peak) and copying gigabytes while the first tick's timeout runs. A new block is
    allocated untouched (its pages cost nothing until written) and nothing ever moves.
    """

    BLOCK = 512

    def __init__(self, params: np.ndarray, width: int) -> None:
        self.params = params
        self.width = int(width)
        self.blocks: list[np.ndarray] = []
        self.owners: list[Any] = []

    def accepts(self, scorer: KernelScorer) -> bool:
        """Whether the bank can hold this scorer's state (bankable, the bank's parameters and width)."""
        st = scorer.st
        return scorer.bankable() and len(st) == self.width and np.array_equal(scorer.p, self.params)

    def adopt(self, scorer: KernelScorer) -> bool:
        """Move a scorer's state into the bank; False (left alone) if its layout differs."""
        if not self.accepts(scorer):
            return False
        self._place(scorer, _Words.of(scorer.st))
        return True

    def adopt_fresh(self, fresh: FreshState) -> KernelScorer:
        """A new, never-fed scorer on the next row: a shallow copy of ``fresh.template`` whose ``st`` is its
        own row. Why a copy rather than a new scorer: building one (its parameter vector, its 217 KB zeroed
        state, the scan for its non-zero words) was most of a first tick over 10 000 new ``default``
        series (~0.1 ms each, holding the interpreter); ``bankable()`` means ``st`` is a scorer's whole
        state, so a copy of a fresh one with a fresh row is a fresh one."""
        scorer = copy.copy(fresh.template)
        self._place(scorer, fresh.words)
        return scorer

    def _place(self, scorer: KernelScorer, words: _Words) -> None:
        n = len(self.owners)
        block, offset = divmod(n, self.BLOCK)
        if block == len(self.blocks):
            self.blocks.append(_zeroed_block(self.BLOCK, self.width))
        row = self.blocks[block][offset]
        # Only the words that are not all-zero bits are written: a fresh state is nearly all zeros, so the
        # block's pages stay untouched (and cost no memory) until the series' history fills them.
        row[words.index] = words.values
        scorer.st, scorer.row = row, n
        self.owners.append(scorer)

    def step(self, step_rows: Any, rows: np.ndarray, values: np.ndarray, out: np.ndarray) -> None:
        """``step_rows(block, params, rows_in_block, values, out)`` over each block the rows fall in.

        The rows are grouped by block with one stable sort (a tick's rows usually come in order, which
        the sort only confirms) rather than with a mask over all of them per block."""
        block_of = rows // self.BLOCK
        first, last = int(block_of.min()), int(block_of.max())
        if first == last:
            step_rows(self.blocks[first], self.params, rows - first * self.BLOCK, values, out)
            return
        order = np.argsort(block_of, kind="stable")
        blocks = block_of[order]
        edges = [0, *(np.flatnonzero(blocks[1:] != blocks[:-1]) + 1).tolist(), len(rows)]
        for lo, hi in itertools.pairwise(edges):
            where, block = order[lo:hi], int(blocks[lo])
            part = np.empty(hi - lo)
            step_rows(self.blocks[block], self.params, rows[where] - block * self.BLOCK, values[where], part)
            out[where] = part


@dataclass(frozen=True)
class _Words:
    """The words of a state vector that are not all-zero bits, and their values."""

    index: np.ndarray
    values: np.ndarray

    @classmethod
    def of(cls, st: np.ndarray) -> _Words:
        index = np.flatnonzero(np.ascontiguousarray(st, dtype=float).view(np.int64))
        return cls(index, st[index])


@dataclass(frozen=True)
class FreshState:
    """A never-fed scorer kept as the pattern of every new series' scorer (never fed, never banked), and
    the non-zero words of its state, found once."""

    template: KernelScorer
    words: _Words

    @classmethod
    def of(cls, template: KernelScorer) -> FreshState:
        return cls(template, _Words.of(template.st))


def _zeroed_block(rows: int, width: int) -> np.ndarray:
    """A zeroed ``rows x width`` block on its own anonymous mapping, in 4 KB pages.

    Why not ``np.zeros``: numpy asks for transparent huge pages on big arrays, so writing the two header
    words of a fresh row commits and zeroes a whole 2 MB page (217 KB rows: every page of the block), which
    took a first tick over 10 000 new series ~0.7 s per 512 rows and 2.2 GB at once. With small pages a
    fresh series costs a few KB until its history fills.
    """
    return np.frombuffer(mmap.mmap(-1, rows * width * 8), dtype=float).reshape(rows, width)


class BankedDetector(SeriesDetector):
    """A :class:`SeriesDetector` whose scorers live in a :class:`StateBank`: the usual tick (one new point
    per series) is one compiled call over the bank. Subclasses name their ``Scorer``, a :class:`KernelScorer`
    built from the detector's parameters alone, whose ``kernel`` module (with ``state_len(params)`` and
    ``step_rows(bank, params, rows, values, out)``) the bank runs; scorers the bank does not adopt go point
    by point. Every scorer it holds comes from :meth:`new_scorer` (restored ones too), so each is that
    :class:`KernelScorer`, which is what lets the bank read its ``row``."""

    Scorer: ClassVar[Callable[[Any], KernelScorer]]

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        template = self.new_scorer()
        self.kernel = template.kernel
        self._bank = self._new_bank()
        # new series are copies of this one (None: the bank cannot hold this configuration's scorers)
        self._fresh = FreshState.of(template) if self._bank.accepts(template) else None

    def new_scorer(self) -> KernelScorer:
        return type(self).Scorer(self.params)

    def _new_bank(self) -> StateBank:
        params = self.new_scorer().p
        return StateBank(params, self.kernel.state_len(params))

    def _step_rows(self, rows: np.ndarray, values: np.ndarray, out: np.ndarray) -> None:
        self._bank.step(self.kernel.step_rows, rows, values, out)

    def _scorer_for(self, key: str) -> SeriesScorer:
        scorer = self._scorers.get(key)
        if scorer is None:
            if self._fresh is not None:
                scorer = self._bank.adopt_fresh(self._fresh)
            else:
                scorer = self.new_scorer()
                self._bank.adopt(scorer)
            self._scorers[key] = scorer
        return scorer

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self._bank = self._new_bank()
        for scorer in self._scorers.values():
            self._bank.adopt(cast(KernelScorer, scorer))

    def _adopt(self, key: str, scorer: SeriesScorer) -> None:
        self._bank.adopt(cast(KernelScorer, scorer))
        self._scorers[key] = scorer

    def evaluate(self, frame: Frame) -> list[Finding]:
        """Series with exactly one new point (the usual tick) are scored in one kernel call over the bank;
        the others (backfills, several points, NaN) go point by point; findings come out in frame order."""
        threshold, severity = self.params.threshold, self.params.severity
        found: list[tuple[int, Finding]] = []
        # the tick's series, as parallel lists: frame index, key, bank row, time, value
        index_of: list[int] = []
        keys: list[str] = []
        rows: list[int] = []
        times: list[float] = []
        values: list[float] = []
        scorers, last_ts, isfinite, never = self._scorers, self._last_ts, math.isfinite, -math.inf
        for index, series in enumerate(frame.series):
            key = series.key
            scorer = scorers.get(key)
            if scorer is None:
                scorer = self._scorer_for(key)
            row = cast(KernelScorer, scorer).row
            stamps = series.timestamps
            if row is not None and len(stamps) == 1:
                t, v = float(stamps[0]), float(series.values[0])
                if t > last_ts.get(key, never) and isfinite(t) and isfinite(v):
                    index_of.append(index)
                    keys.append(key)
                    rows.append(row)
                    times.append(t)
                    values.append(v)
                    continue
            finding = self._evaluate_series(series, threshold, severity)
            if finding is not None:
                found.append((index, finding))
        if rows:
            scores = np.empty(len(rows))
            self._step_rows(np.array(rows), np.array(values), scores)
            last_ts.update(zip(keys, times, strict=True))
            for k in np.flatnonzero(scores >= threshold).tolist():
                index, score, t, v = index_of[k], float(scores[k]), times[k], values[k]
                series, scorer = frame.series[index], scorers[keys[k]]
                worst = (t, score, v, self.explain(scorer, v, score))
                found.append((index, self._finding(series, worst, threshold, severity)))
        return [finding for _, finding in sorted(found, key=lambda item: item[0])]
