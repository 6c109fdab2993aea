"""Leave-one-group-out cross-validation on the NAB public part: a score that predicts unseen series.

Why: a detector's settings and its alert threshold chosen on all 36 public series score ~14 points less on
NAB series it never saw. Holding out one of NAB's data groups (the folders of ``data/``) at a time,
choosing every setting on the other groups by their NAB score, and scoring the held-out group with those
settings measures what the selection procedure is worth on data it was not tuned on.

How it stays fast:

* a *candidate* is one setting of the knobs that change the detector's arithmetic (its kernel); its
  scores before debouncing are computed once per series (the detector run with ``rest = cooldown = 0``,
  which makes its debounce the identity), cached on disk per series under a key of the detector's source
  and the setting, and computed in at most two worker processes;
* the debounce settings (``rest``, ``alert_level``, ``cooldown``, ``cooldown_level``) are then applied to
  those cached scores by one compiled loop (the detector's own debounce function), and the threshold is
  the alert level (``tied``, the detector's own decision) or chosen by the scorer's own sweep: neither
  reruns a detector.

NAB's score is defined over a corpus; a group's score here is NAB's normalised score over that group's
files alone (null = no detection, perfect = every window at its left edge), computed with the functions of
the independent scorer ``../shared/tools/nab_score.py`` (imported from there, never copied).
``artificialNoAnomaly`` has no windows, so its normalised score is undefined: it is held out like the
others (it can only cost false positives) and counts in the *pooled* figure, the held-out raw scores of all
groups summed and normalised over the whole corpus, which is how a corpus of unseen series is scored.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from aiops_detectors.anomaly._jit import njit
from aiops_detectors.anomaly._kernel_parts import NEVER, debounce

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "benchmarks" / "out" / "nab_cache"
SOURCES = REPO / "detectors" / "aiops_detectors" / "anomaly"
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
DEBOUNCE_KNOBS = ("rest", "alert_level", "cooldown", "cooldown_level")


@dataclass(frozen=True)
class Debounce:
    """The post-processing knobs every likelihood-normalised detector shares (see ``_base.Debounce``)."""

    rest: int = 100
    alert_level: float = 0.6
    cooldown: int = 500
    cooldown_level: float = 0.9

    def params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in DEBOUNCE_KNOBS}


@dataclass(frozen=True)
class Setting:
    """One point of the grid: kernel knobs (a rerun each) and debounce knobs (cheap)."""

    kernel: tuple[tuple[str, Any], ...]
    debounce: Debounce

    def params(self) -> dict[str, Any]:
        return dict(self.kernel) | self.debounce.params()

    def label(self) -> str:
        d = self.debounce
        knobs = [f"{k}={v}" for k, v in self.kernel]
        knobs.append(f"level={d.alert_level} rest={d.rest} cool={d.cooldown}@{d.cooldown_level}")
        return " ".join(knobs)


@dataclass(frozen=True)
class Grid:
    """The settings a detector's selection may choose from; keep it small (each point is a chance to
    overfit the training groups)."""

    kernels: Sequence[Mapping[str, Any]]
    debounces: Sequence[Debounce]

    def settings(self) -> list[Setting]:
        return [Setting(tuple(sorted(k.items())), d) for k, d in itertools.product(self.kernels, self.debounces)]


def debounce_grid(levels: Iterable[float], cooldown_levels: Iterable[float]) -> list[Debounce]:
    return [Debounce(alert_level=a, cooldown_level=c) for a in levels for c in cooldown_levels if c >= a]


@njit
def _debounce_run(raw: np.ndarray, knobs: np.ndarray) -> np.ndarray:
    """The kernels' own debounce over a series: ``knobs`` are rest, level, cooldown, cooldown level."""
    out = np.empty(len(raw))
    since = np.array([NEVER])
    for i in range(len(raw)):
        out[i] = debounce(since, 0, knobs, 0, raw[i])
    return out


def apply_debounce(raw: np.ndarray, d: Debounce) -> np.ndarray:
    knobs = np.array([d.rest, d.alert_level, d.cooldown, d.cooldown_level], dtype=float)
    out: np.ndarray = _debounce_run(raw, knobs)
    return out


def source_digest() -> str:
    """The cache key's code part: any edit to a detector's source invalidates its cached scores."""
    h = hashlib.sha1()
    for path in sorted(SOURCES.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def _score_one(job: tuple[str, dict[str, Any], np.ndarray, np.ndarray]) -> np.ndarray:
    from aiops.commands.detect import build_detector, score_series

    name, params, ts, values = job
    scores, _ = score_series(build_detector(name, params), ts, values)
    return scores


@dataclass
class RawScores:
    """Pre-debounce scores of one detector under kernel settings, per series, cached on disk."""

    detector: str
    series: Mapping[str, tuple[np.ndarray, np.ndarray]]  # rel -> (epoch seconds, values)
    workers: int = 2
    digest: str = field(default_factory=source_digest)

    def get(self, kernel: Mapping[str, Any]) -> dict[str, np.ndarray]:
        params = dict(kernel) | {"rest": 0, "cooldown": 0}  # the debounce is the identity then
        key = hashlib.sha1(json.dumps([self.detector, self.digest, sorted(params.items())]).encode()).hexdigest()
        folder = CACHE / self.detector / key[:16]
        out: dict[str, np.ndarray] = {}
        todo = []
        for rel in self.series:
            path = folder / (rel.replace("/", "__") + ".npy")
            if path.exists():
                out[rel] = np.load(path)
            else:
                todo.append(rel)
        if todo:
            todo.sort(key=lambda r: -len(self.series[r][1]))  # longest first balances the two workers
            jobs = [(self.detector, params, *self.series[r]) for r in todo]
            if self.workers > 1 and len(jobs) > 1:
                with ProcessPoolExecutor(max_workers=self.workers) as pool:
                    results = list(pool.map(_score_one, jobs))
            else:
                results = [_score_one(j) for j in jobs]
            folder.mkdir(parents=True, exist_ok=True)
            for rel, sc in zip(todo, results, strict=True):
                np.save(folder / (rel.replace("/", "__") + ".npy"), sc)
                out[rel] = sc
        return out


@dataclass(frozen=True)
class Fold:
    held_out: str
    setting: Setting
    thresholds: dict[str, float]  # per profile, chosen on the other groups
    train: dict[str, float]  # normalised score on the training groups, per profile
    test_raw: dict[str, float]
    test: dict[str, float]  # normalised on the held-out group (nan without windows)


@dataclass(frozen=True)
class CVReport:
    folds: list[Fold]
    in_sample: dict[str, float]  # best setting chosen and scored on all groups
    in_sample_setting: Setting
    pooled: dict[str, float]  # held-out raw scores summed, normalised over the whole corpus

    def mean(self, profile: str) -> float:
        vals = [f.test[profile] for f in self.folds if math.isfinite(f.test[profile])]
        return float(np.mean(vals)) if vals else math.nan


class Scoring:
    """NAB scoring of any subset of the corpus's files, through the shared scorer's own functions."""

    def __init__(self, ns: ModuleType, corpus: Any) -> None:
        self.ns, self.corpus = ns, corpus
        self.groups: dict[str, list[str]] = {}
        for rel in corpus.names:
            self.groups.setdefault(rel.split("/")[0], []).append(rel)
        self.costs = {p: corpus.profiles[p]["CostMatrix"] for p in PROFILES}

    def stack(self, scores: Mapping[str, np.ndarray], files: Sequence[str]) -> tuple[np.ndarray, ...]:
        s, w, u = [], [], []
        for rel in files:
            g = self.corpus.geometry[rel]
            s.append(np.nan_to_num(scores[rel])[g.scorable])
            w.append(g.window_id[g.scorable])
            u.append(g.unit_score[g.scorable])
        return np.concatenate(s), np.concatenate(w), np.concatenate(u)

    def windows(self, files: Sequence[str]) -> int:
        return sum(self.corpus.geometry[r].n_windows for r in files)

    def best(self, stacked: tuple[np.ndarray, ...], profile: str) -> tuple[float, float]:
        """(threshold, raw score) maximising the raw score; ties go to the highest threshold, as NAB's."""
        table = self.ns.sweep(*stacked, self.costs[profile])
        k = int(np.argmax(table["score"].to_numpy()))
        return float(table["threshold"].iloc[k]), float(table["score"].iloc[k])

    def raw_at(self, stacked: tuple[np.ndarray, ...], profile: str, threshold: float) -> float:
        s, w, u = stacked
        cost = self.costs[profile]
        det = s >= threshold
        raw = cost["fpWeight"] * float(u[det & (w < 0)].sum())
        for wid in np.unique(w[w >= 0]):
            hit = det & (w == wid)
            raw += cost["tpWeight"] * float(u[hit].max()) if hit.any() else -cost["fnWeight"]
        return float(raw)

    def normalise(self, raw: float, n_windows: int, profile: str) -> float:
        """NAB's normalisation: the null detector scores -fnWeight per window, perfect +tpWeight."""
        cost = self.costs[profile]
        null, perfect = -cost["fnWeight"] * n_windows, cost["tpWeight"] * n_windows
        return float(100.0 * (raw - null) / (perfect - null)) if n_windows else math.nan


def cross_validate(
    scoring: Scoring,
    raw_scores: Callable[[Mapping[str, Any]], dict[str, np.ndarray]],
    grid: Grid,
    progress: Callable[[str], None] = lambda _: None,
    tied: bool = False,
) -> CVReport:
    """Leave-one-group-out: for each group, the setting and thresholds that score best on the others.

    ``tied``: the threshold is the setting's alert level, as the detector decides on its own (a score at or
    above the level raises a finding and starts the rest period), so every profile scores the same
    decisions. Untied, NAB's sweep may put the threshold just above the level, where a score between the
    two starts a rest period without counting as a detection, which a deployed detector never does.
    """
    groups = list(scoring.groups)

    def choose(data: tuple[np.ndarray, ...], st: Setting, profile: str) -> tuple[float, float]:
        if tied:
            level = st.debounce.alert_level
            return level, scoring.raw_at(data, profile, level)
        return scoring.best(data, profile)

    settings = grid.settings()
    # per setting, per group: the stacked (score, window, unit) arrays; training sets concatenate groups
    stacked: dict[Setting, dict[str, tuple[np.ndarray, ...]]] = {}
    for kernel in grid.kernels:
        undebounced = raw_scores(kernel)
        for st in settings:
            if dict(st.kernel) != dict(kernel):
                continue
            deb = {rel: apply_debounce(sc, st.debounce) for rel, sc in undebounced.items()}
            stacked[st] = {g: scoring.stack(deb, files) for g, files in scoring.groups.items()}
        progress(f"  scored {dict(kernel)}")

    def pooled(st: Setting, keep: Sequence[str]) -> tuple[np.ndarray, ...]:
        parts = [stacked[st][g] for g in keep]
        return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))

    folds: list[Fold] = []
    for held in groups:
        train_groups = [g for g in groups if g != held]
        train_windows = sum(scoring.windows(scoring.groups[g]) for g in train_groups)
        # the setting is chosen by the standard profile; each profile then gets its own threshold
        ranked = []
        for st in settings:
            thr, raw = choose(pooled(st, train_groups), st, "standard")
            ranked.append((raw, st))
        best_st = max(ranked, key=lambda r: r[0])[1]
        train_set = pooled(best_st, train_groups)
        test_set = stacked[best_st][held]
        thresholds, train, test_raw, test = {}, {}, {}, {}
        for prof in PROFILES:
            thr, raw = choose(train_set, best_st, prof)
            thresholds[prof] = thr
            train[prof] = scoring.normalise(raw, train_windows, prof)
            test_raw[prof] = scoring.raw_at(test_set, prof, thr)
            test[prof] = scoring.normalise(test_raw[prof], scoring.windows(scoring.groups[held]), prof)
        folds.append(Fold(held, best_st, thresholds, train, test_raw, test))
    total_windows = scoring.windows(scoring.corpus.names)
    in_sample: dict[str, float] = {}
    best_all = max(settings, key=lambda st: choose(pooled(st, groups), st, "standard")[1])
    for prof in PROFILES:
        _, raw = choose(pooled(best_all, groups), best_all, prof)
        in_sample[prof] = scoring.normalise(raw, total_windows, prof)
    pooled_cv = {
        prof: scoring.normalise(sum(f.test_raw[prof] for f in folds), total_windows, prof) for prof in PROFILES
    }
    return CVReport(folds, in_sample, best_all, pooled_cv)


def series_of(corpus: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for rel in corpus.names:
        frame = corpus.frames[rel]
        ts = frame["timestamp"].to_numpy(dtype="datetime64[ns]").astype("int64") / 1e9
        out[rel] = (ts, frame["value"].to_numpy(dtype=float))
    return out


def workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))
