"""Other anomaly likelihoods and combinations for ``default``, scored by the leave-one-group-out CV on NAB.

    .venv/bin/python benchmarks/nab_likelihoods.py            # the table of RESULTS.md (~2 min warm)
    .venv/bin/python benchmarks/nab_likelihoods.py --halves 20  # also POT vs Gaussian over random half splits

Why offline: trying a likelihood through the detector reruns the whole kernel for every variant. The three
components' raw scores do not depend on the likelihood, so they are computed once by the shipped kernel
(``nab_components.py``, cached) and each variant here only reruns a likelihood over them. The variants use
the same folds, debounce grid and threshold rule (the alert level) as ``nab.py --cv``; the Gaussian row
reproduces the detector's figure exactly, which checks the premise.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from aiops_detectors.anomaly._jit import njit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nab
import nab_components
import nab_cv

FLOORS = (0.2, 0.2, 0.4)  # the shipped floors: short shape, long shape, value
LEARN, WARMUP, HISTORY = 150, 30, 5000
GAUSSIAN, RANK, POT = 0, 1, 2
DEBOUNCES = nab_cv.debounce_grid((0.5, 0.6, 0.7), (0.8, 0.9, 1.0))


@njit
def _insert(ring: np.ndarray, srt: np.ndarray, cnt: int, pos: int, x: float) -> tuple[int, int]:
    """Add ``x`` to the sliding window (``ring`` in arrival order, ``srt`` sorted); returns (count, pos)."""
    if cnt == len(ring):  # full: the oldest leaves the sorted copy first
        d = np.searchsorted(srt[:cnt], ring[pos])
        srt[d : cnt - 1] = srt[d + 1 : cnt].copy()
        ring[pos] = x
        cnt, pos = cnt - 1, (pos + 1) % len(ring)
    else:
        ring[cnt] = x
    j = np.searchsorted(srt[:cnt], x, side="right")
    srt[j + 1 : cnt + 1] = srt[j:cnt].copy()
    srt[j] = x
    return cnt + 1, pos


@njit
def likelihood(
    raw: np.ndarray, feed: np.ndarray, mode: int, history: int, floor: float, m_tail: float, decades: float
) -> np.ndarray:
    """One component's surprise under an exact sliding window: Gaussian (the shipped arithmetic), empirical
    rank, or peaks over threshold (exponential excess above the top ``m_tail`` fraction)."""
    out = np.zeros(len(raw))
    ring, srt = np.zeros(history), np.zeros(history)
    cnt, pos, seen, s1, s2 = 0, 0, 0, 0.0, 0.0
    for k in range(len(raw)):
        if not feed[k]:
            continue
        x = raw[k]
        if seen < LEARN:
            seen += 1
            continue
        n = cnt
        if seen >= LEARN + WARMUP and n > 1:
            if mode == GAUSSIAN:
                mean = s1 / n
                std = max(math.sqrt(max(s2 / n - mean * mean, 0.0)) + 1e-4 * abs(mean), floor) + 1e-12
                tail = 0.5 * math.erfc(((x - mean) / std) / math.sqrt(2.0))
            else:
                c = n - np.searchsorted(srt[:n], x)  # past scores >= x
                tail = (c + 1.0) / (n + 1.0)
                m = min(max(int(m_tail * n), 5), n - 1)
                u = srt[n - m - 1]
                if mode == POT and x > u:
                    beta = max(float(np.mean(srt[n - m : n])) - u, floor)
                    tail = (m + 1.0) / (n + 1.0) * math.exp(-(x - u) / beta)
            if tail < 1.0:
                out[k] = min(1.0, -math.log10(tail + 1e-300) / decades)
        if cnt == history:
            old = ring[pos]
            s1 -= old
            s2 -= old * old
        s1 += x
        s2 += x * x
        cnt, pos = _insert(ring, srt, cnt, pos, x)
        seen += 1
    return out


Components = dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
Variant = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (raw, shipped surprise, fed) -> score


def per_component(mode: int, m_tail: float = 0.1, decades: float = 6.0, history: int = HISTORY) -> Variant:
    def score(raw: np.ndarray, sur: np.ndarray, feed: np.ndarray) -> np.ndarray:
        cols = [likelihood(raw[:, c], feed, mode, history, FLOORS[c], m_tail, decades) for c in range(3)]
        return np.max(np.stack(cols, axis=1), axis=1)

    return score


def fisher(decades: float) -> Variant:
    """Fisher's combination of the three shipped (Gaussian) tails instead of the max."""

    def score(raw: np.ndarray, sur: np.ndarray, feed: np.ndarray) -> np.ndarray:
        half = -np.log(10.0 ** (-6.0 * sur)).sum(axis=1)  # half of Fisher's chi-square statistic, 6 dof
        p = np.exp(-half) * (1 + half + half * half / 2)
        return np.where(sur.max(axis=1) > 0, np.minimum(1.0, -np.log10(p + 1e-300) / decades), 0.0)

    return score


VARIANTS: list[tuple[str, Variant]] = [
    ("Gaussian (shipped before), exact window", per_component(GAUSSIAN)),
    ("empirical rank, decades log10(5001)", per_component(RANK, decades=math.log10(HISTORY + 1))),
    *[(f"POT tail {m} decades {d}", per_component(POT, m, d)) for d in (3.0, 4.0) for m in (0.05, 0.1, 0.2)],
    ("POT tail 0.1 decades 2.5", per_component(POT, 0.1, 2.5)),
    ("POT tail 0.1 decades 3 history 2000", per_component(POT, 0.1, 3.0, 2000)),
    ("Fisher of the Gaussian tails, decades 6", fisher(6.0)),
    ("Fisher of the Gaussian tails, decades 7", fisher(7.0)),
]


def cross_validate(scoring: nab_cv.Scoring, scores: dict[str, np.ndarray]) -> nab_cv.CVReport:
    return nab_cv.cross_validate(scoring, lambda _: scores, nab_cv.Grid([{}], DEBOUNCES), tied=True)


def random_halves(scoring: nab_cv.Scoring, a: dict[str, np.ndarray], b: dict[str, np.ndarray], n: int) -> None:
    """Both variants over ``n`` random splits of the files into halves (each half chooses for the other)."""
    groups = scoring.groups
    names = sorted(a)
    rng = np.random.default_rng(123)
    diffs = []
    try:
        for _ in range(n):
            perm = rng.permutation(len(names))
            half = len(names) // 2
            scoring.groups = {"A": [names[i] for i in perm[:half]], "B": [names[i] for i in perm[half:]]}
            diffs.append(cross_validate(scoring, b).mean("standard") - cross_validate(scoring, a).mean("standard"))
    finally:
        scoring.groups = groups
    wins = sum(d > 0 for d in diffs)
    print(
        f"POT - Gaussian over {n} random half splits: mean {np.mean(diffs):+.2f}, sd {np.std(diffs, ddof=1):.2f}, "
        f"POT better in {wins}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--data", type=Path, default=nab.DEFAULT_DATA)
    ap.add_argument("--halves", type=int, default=0, help="also compare POT and Gaussian over N random half splits")
    args = ap.parse_args(argv)
    ns = nab.load_scorer(args.data.parent.parent / "tools" / "nab_score.py")
    corpus = ns.NABCorpus(
        data_dir=str(args.data / "data"),
        windows_path=str(args.data / "windows.json"),
        profiles_path=str(args.data / "profiles.json"),
    )
    scoring = nab_cv.Scoring(ns, corpus)
    comps: Components = nab_components.components(nab_cv.series_of(corpus))
    print(f"{'variant':<44}{'CV mean':>9}{'in-sample':>11}  per held-out group")
    kept: dict[str, dict[str, np.ndarray]] = {}
    for name, variant in VARIANTS:
        scores = {rel: variant(*c) for rel, c in comps.items()}
        kept[name] = scores
        rep = cross_validate(scoring, scores)
        groups = " ".join(f"{f.test['standard']:.1f}" for f in rep.folds if math.isfinite(f.test["standard"]))
        print(f"{name:<44}{rep.mean('standard'):>9.2f}{rep.in_sample['standard']:>11.2f}  {groups}", flush=True)
    if args.halves:
        random_halves(scoring, kept[VARIANTS[0][0]], kept["POT tail 0.1 decades 3.0"], args.halves)
    return 0


if __name__ == "__main__":
    sys.exit(main())
