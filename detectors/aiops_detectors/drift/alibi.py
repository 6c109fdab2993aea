"""alibi-detect drift detectors behind aiops's drift contract (optional extra ``aiops[alibi]``).

alibi-detect is imported lazily inside ``fit``: without it, ``aiops plugins`` still lists these detectors
and only using one raises :class:`~aiops.errors.DetectorError` with the install hint. Licence: alibi-detect
0.11.5 and later are under the Business Source License 1.1 (see docs/drift.md), which is why the extra is
never installed by default. alibi-detect pins numpy<2, so the extra lives in its own environment
(``scripts/alibi-env.sh`` creates ``.alibi-venv``).

alibi's numpy/scipy detectors need nothing more. ``alibi_mmd`` (MMDDrift) and the online ``alibi_mmd_online``
(MMDDriftOnline) and ``alibi_lsdd_online`` (LSDDDriftOnline) run on alibi's PyTorch backend, on the CPU:
``scripts/alibi-env.sh`` installs ``torch==2.13.0`` (a CPU wheel) into ``.alibi-venv``; without torch they
raise :class:`~aiops.errors.DetectorError` saying so. The online ``alibi_cvm_online`` (CVMDriftOnline) and
``alibi_fet_online`` (FETDriftOnline) are numpy, scipy and numba only.
"""

from __future__ import annotations

import hashlib
import math
import time
import warnings
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Literal, TypeVar

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from aiops.detection import ColumnDrift, DriftResult
from aiops.errors import DetectorError
from aiops.types import json_safe

from .base import DriftDetector, DriftParams, fmt_p, numeric_matrix, to_frame

T = TypeVar("T", bound=tuple[Any, ...])

INSTALL_HINT = (
    "alibi-detect is not installed: run scripts/alibi-env.sh (creates .alibi-venv with pip install -e "
    "'.[alibi]'); note alibi-detect >= 0.11.5 is under the Business Source License 1.1"
)


def import_alibi_cd() -> Any:
    """``alibi_detect.cd``, or DetectorError with the install hint."""
    try:
        import alibi_detect.cd as cd
    except ImportError as exc:
        raise DetectorError(f"{INSTALL_HINT} ({exc})") from exc
    return cd


class AlibiParams(DriftParams):
    """Parameters shared by the alibi-detect wrappers (alibi's own defaults)."""

    alpha: float = Field(0.05, gt=0.0, lt=1.0, description="alibi's p_val: significance of the (corrected) test")
    correction: Literal["bonferroni", "fdr"] = Field("bonferroni", description="alibi's multivariate correction")


class _AlibiDetector(DriftDetector):
    """Common wrapper: encode the table as alibi expects, predict, map p-values back to columns."""

    Params: ClassVar[type[DriftParams]] = AlibiParams
    alibi_class: ClassVar[str] = ""
    test_name: ClassVar[str] = ""
    all_categorical: ClassVar[bool] = False

    def _fit(self, reference: pd.DataFrame) -> None:
        cd = import_alibi_cd()
        self.categorical_: dict[str, dict[str, int]] = {}
        for c in self.columns_:
            s = reference[c]
            num = pd.to_numeric(s, errors="coerce")
            if self.all_categorical or num.notna().sum() < 0.99 * max(int(s.notna().sum()), 1):
                self.categorical_[c] = {str(v): i for i, v in enumerate(pd.unique(s.dropna().astype(str)))}
        x = self._encode(reference, fit=True)
        self.detector_ = self._make(cd, x)

    def _encode(self, frame: pd.DataFrame, fit: bool = False) -> np.ndarray:
        num_cols = [c for c in self.columns_ if c not in self.categorical_]
        out = np.zeros((len(frame), len(self.columns_)), dtype=np.float32)
        x = numeric_matrix(frame, num_cols)
        if fit:
            mean = np.nanmean(np.where(np.isnan(x).all(axis=0), 0.0, x), axis=0)
            self.fill_ = np.where(np.isfinite(mean), mean, 0.0)
        x = np.where(np.isnan(x), self.fill_, x)  # alibi's tests reject NaN: fill with the reference mean
        j = 0
        for i, c in enumerate(self.columns_):
            if c in self.categorical_:
                mapping = self.categorical_[c]
                col = frame[c] if c in frame.columns else pd.Series([None] * len(frame))
                out[:, i] = [len(mapping) if pd.isna(v) else mapping.get(str(v), len(mapping) + 1) for v in col]
            else:
                out[:, i] = x[:, j]
                j += 1
        return out

    def _make(self, cd: Any, x: np.ndarray) -> Any:
        p: Any = self.params
        cls = getattr(cd, self.alibi_class)
        return cls(x, p_val=p.alpha, correction=p.correction)

    def _test(self, current: pd.DataFrame) -> DriftResult:
        p: Any = self.params
        out = self.detector_.predict(
            self._encode(current), drift_type="batch", return_p_val=True, return_distance=True
        )["data"]
        pvals = np.atleast_1d(np.asarray(out["p_val"], dtype=float))
        dist = np.atleast_1d(np.asarray(out["distance"], dtype=float))
        threshold = float(out.get("threshold", p.alpha))
        columns = {}
        for i, c in enumerate(self.columns_):
            pv = float(pvals[i]) if i < len(pvals) else 1.0
            stat = float(dist[i]) if i < len(dist) else 0.0
            test = "chi-square" if c in self.categorical_ else self.test_name
            columns[c] = ColumnDrift(c, test, stat, pv, None, bool(pv < threshold), {"threshold": threshold})
        drift = bool(out["is_drift"])
        drifted = [c for c, col in columns.items() if col.drift]
        summary = (
            f"alibi {self.alibi_class}: drift in {', '.join(drifted[:5]) or 'the batch'}"
            if drift
            else f"alibi {self.alibi_class}: no drift (threshold p<{fmt_p(threshold)})"
        )
        return DriftResult(
            drift,
            summary,
            columns,
            float(np.min(pvals)) if len(pvals) else None,
            {"backend": "alibi-detect", "threshold": threshold},
        )


class AlibiKSDrift(_AlibiDetector):
    """alibi-detect KSDrift: feature-wise Kolmogorov-Smirnov with a Bonferroni/FDR correction.

    >>> import numpy as np, pandas as pd
    >>> det = AlibiKSDrift()
    >>> det.params.alpha
    0.05
    """

    alibi_class = "KSDrift"
    test_name = "ks"
    name: ClassVar[str] = "alibi_ks"


class AlibiCVMDrift(_AlibiDetector):
    """alibi-detect CVMDrift: feature-wise Cramér-von Mises with a Bonferroni/FDR correction.

    >>> AlibiCVMDrift(alpha=0.01).params.alpha
    0.01
    """

    alibi_class = "CVMDrift"
    test_name = "cvm"
    name: ClassVar[str] = "alibi_cvm"


class AlibiTabularDrift(_AlibiDetector):
    """alibi-detect TabularDrift: KS for numeric, chi-square for categorical columns, corrected.

    >>> AlibiTabularDrift().params.correction
    'bonferroni'
    """

    alibi_class = "TabularDrift"
    test_name = "ks"
    name: ClassVar[str] = "alibi_tabular"

    def _make(self, cd: Any, x: np.ndarray) -> Any:
        p: Any = self.params
        cats = {i: None for i, c in enumerate(self.columns_) if c in self.categorical_}
        return cd.TabularDrift(x, p_val=p.alpha, correction=p.correction, categories_per_feature=cats or None)


class AlibiChiSquareDrift(_AlibiDetector):
    """alibi-detect ChiSquareDrift: every column treated as categorical, chi-square per column.

    >>> AlibiChiSquareDrift().name
    'alibi_chisquare'
    """

    alibi_class = "ChiSquareDrift"
    test_name = "chi-square"
    all_categorical = True
    name: ClassVar[str] = "alibi_chisquare"

    def _make(self, cd: Any, x: np.ndarray) -> Any:
        p: Any = self.params
        return cd.ChiSquareDrift(x, p_val=p.alpha, correction=p.correction)


BACKEND_HINT = (
    "install torch into the alibi environment: scripts/alibi-env.sh runs `pip install torch==2.13.0` (a CPU "
    "wheel; plain `torch` pulls a CUDA build of several GB)"
)


def _backend_error(name: str, backend: str, exc: Exception) -> DetectorError:
    hint = BACKEND_HINT if backend == "pytorch" else f"install {backend} into the alibi environment"
    return DetectorError(f"alibi {name} needs its {backend} backend: {hint} ({exc})")


@contextmanager
def _torch(threads: int, seed: int | None = None) -> Iterator[None]:
    """torch's intra-op thread count (and, given a seed, its global generator) set for the block, then put back.

    alibi's torch detectors run many small tensor operations: on a shared machine one thread is several
    times faster than torch's default of one per core (measured: MMDDriftOnline's threshold simulation took
    86 s with 2 threads on 2 busy cores, 2.7 s with 1). alibi draws its permutations from torch's global
    generator, hence the seed. Without torch, nothing to set.
    """
    try:
        import torch
    except ImportError:
        yield
        return
    saved_threads = torch.get_num_threads()
    saved_rng = torch.random.get_rng_state() if seed is not None else None
    if saved_threads != threads:
        torch.set_num_threads(threads)
    if seed is not None:
        torch.manual_seed(seed)
    try:
        yield
    finally:
        if saved_rng is not None:
            torch.random.set_rng_state(saved_rng)
        if torch.get_num_threads() != saved_threads:
            torch.set_num_threads(saved_threads)


TORCH_THREADS = Field(
    1, ge=1, le=64, description="torch threads while alibi's torch backend runs (1 is fastest on a shared host)"
)
# The kernel tests (MMD, and the online detectors' simulated thresholds) cost the square of the reference sample.
KERNEL_REFERENCE_ROWS = Field(
    500, ge=10, le=5000, description="reference rows kept (uniform random sample); the cost grows with its square"
)


class AlibiMMDParams(DriftParams):
    """Parameters of :class:`AlibiMMDDrift`."""

    alpha: float = Field(0.05, gt=0.0, lt=1.0, description="alibi's p_val")
    backend: Literal["pytorch", "tensorflow", "keops"] = Field(
        "pytorch", description="alibi's MMD backend (the alibi environment installs pytorch, CPU)"
    )
    n_permutations: int = Field(100, ge=10, description="alibi's permutation count (the p-value's resolution)")
    max_reference_rows: int = KERNEL_REFERENCE_ROWS
    max_current_rows: int = Field(
        500, ge=10, le=5000, description="current rows tested (uniform random sample); quadratic, as above"
    )
    torch_threads: int = TORCH_THREADS


class AlibiMMDDrift(_AlibiDetector):
    """alibi-detect MMDDrift: one kernel two-sample test of all columns together (Gaussian RBF kernel).

    Runs on alibi's PyTorch backend, on the CPU. The columns are standardised with the reference's mean and
    standard deviation first (the kernel's bandwidth is the median distance between reference rows, so a
    column on a large scale would otherwise drown the others); categorical columns enter as their codes.
    The p-value comes from ``n_permutations`` permutations of the pooled rows; the cost is quadratic in
    ``max_reference_rows + max_current_rows``: about 0.1 s to fit and 1.3 s to test with 500 + 500 rows and
    100 permutations on one core, 6 s to test with 1000 + 1000.

    >>> AlibiMMDDrift().params.backend, AlibiMMDDrift().params.max_reference_rows
    ('pytorch', 500)
    """

    Params = AlibiMMDParams
    alibi_class = "MMDDrift"
    test_name = "mmd"
    name: ClassVar[str] = "alibi_mmd"

    def _encode(self, frame: pd.DataFrame, fit: bool = False) -> np.ndarray:
        x = super()._encode(frame, fit=fit)
        if fit:
            self.center_ = x.mean(axis=0)
            sd = x.std(axis=0)
            self.scale_ = np.where(sd > 0, sd, 1.0)
        z: np.ndarray = ((x - self.center_) / self.scale_).astype(np.float32)
        return z

    def _make(self, cd: Any, x: np.ndarray) -> Any:
        p: Any = self.params
        extra = {"device": "cpu"} if p.backend == "pytorch" else {}
        start = time.perf_counter()
        try:
            with _torch(p.torch_threads):
                det = cd.MMDDrift(x, backend=p.backend, p_val=p.alpha, n_permutations=p.n_permutations, **extra)
        except (ImportError, NotImplementedError) as exc:
            raise _backend_error("MMDDrift", p.backend, exc) from exc
        self.fit_seconds_ = time.perf_counter() - start
        return det

    def _test(self, current: pd.DataFrame) -> DriftResult:
        p: Any = self.params
        x = self._encode(current)
        if len(x) < 2:
            return DriftResult(
                False, "alibi MMDDrift: fewer than 2 rows, nothing to test", {}, None, {"n_current": len(x)}
            )
        start = time.perf_counter()
        with _torch(p.torch_threads, self._seed()):  # the permutations: same rows, same p-value
            out = self.detector_.predict(x, return_p_val=True, return_distance=True)["data"]
        seconds = time.perf_counter() - start
        pv = float(out["p_val"])
        drift = bool(out["is_drift"])
        mmd2 = float(out["distance"])
        verdict = "drift" if drift else "no drift"
        summary = f"alibi MMDDrift: {verdict} over {len(self.columns_)} column(s) (MMD^2={mmd2:.3g}, p={fmt_p(pv)})"
        details = {
            "backend": "alibi-detect",
            "alibi_backend": p.backend,
            "mmd2": mmd2,
            "threshold_mmd2": float(out.get("distance_threshold", math.nan)),
            "n_permutations": p.n_permutations,
            "n_reference": self.n_reference_,
            "n_current": len(x),
            "tested_columns": list(self.columns_),
            "fit_seconds": self.fit_seconds_,
            "test_seconds": seconds,
        }
        return DriftResult(drift, summary, {}, pv, details)


# ---- online detectors ------------------------------------------------------------------------------------
#
# alibi's online detectors take one instance per ``predict`` and flag drift when a statistic over the last
# ``window_sizes`` instances exceeds a threshold. The thresholds are set at construction by simulating
# ``n_bootstraps`` streams without drift, so that the expected run time (ERT: rows until a false alarm) is
# ``ert``; that simulation is the slow part (seconds), done once per reference. Its random numbers come from
# numpy's global generator: the wrappers seed it (and put the caller's state back) so a refit after a restart
# configures exactly the same thresholds.
#
# State. alibi keeps every instance it has seen (``xs``) and every statistic (``test_stats``); the wrappers
# trim both after each row to what the next row needs (the last ``max(window_sizes)`` instances, the last
# statistics), so memory stays bounded. ``state_dict`` saves exactly that (a few hundred numbers), the row
# count ``t`` and a digest of the reference; ``load_state_dict`` replays the saved instances through alibi's
# ``score`` (which rebuilds CVM's window-vs-reference comparisons) and sets ``t`` and the last statistics
# back, so a restarted detector continues the stream as if it had never stopped. A saved state whose
# reference digest differs from the refitted reference (the file changed, the registry alias moved) is
# dropped: the stream restarts against the new reference.


@contextmanager
def _seeded(seed: int | list[int]) -> Iterator[None]:
    """numpy's global generator seeded for the block, then put back (alibi draws from it)."""
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(saved)


def min_bootstraps(ert: float, n_features: int, window_sizes: list[int]) -> int:
    """The fewest simulated streams from which alibi can estimate every threshold (with a 25 % margin).

    alibi targets, per column, the ``1 - beta`` quantile of the simulated statistics with
    ``beta = 1 - (1 - 1/ert) ** (1/d)`` and drops the streams that crossed it at each of the
    ``2 max(w) - min(w)`` steps it configures; a quantile needs at least ``1/beta`` streams left.

    >>> min_bootstraps(1000, 1, [20, 100])
    1497
    >>> min_bootstraps(1000, 2, [20, 100])
    2735
    """
    beta = 1.0 - (1.0 - 1.0 / ert) ** (1.0 / max(n_features, 1))
    steps = 2 * max(window_sizes) - min(window_sizes)
    needed: float = 1.25 / beta * math.exp(beta * steps)
    return math.ceil(needed)


class OnlineParams(DriftParams):
    """What every online alibi-detect wrapper shares: a fixed reference, then rows fed one at a time, with
    thresholds simulated for an expected run time instead of a significance level."""

    alpha: float = Field(
        0.002, gt=0.0, lt=1.0, description="not used by the online detectors: their false-alarm rate is set by `ert`"
    )
    ert: float = Field(
        1000.0, ge=10.0, description="expected run time: rows fed, on a stream without drift, until a false alarm"
    )
    n_bootstraps: int | None = Field(
        None,
        ge=100,
        description="simulated streams that set the thresholds (default: the fewest that target `ert`, with a "
        "25% margin); the fit time grows linearly with it",
    )
    max_reference_rows: int = KERNEL_REFERENCE_ROWS
    max_current_rows: int = Field(
        5000, ge=1, description="rows fed per evaluation at most: when more arrive, only the newest are fed"
    )

    @model_validator(mode="after")
    def _fixed_reference(self) -> OnlineParams:
        if self.reference_mode == "rolling":
            raise ValueError("an online detector keeps its own windows: reference_mode must be fixed")
        return self


class AlibiOnlineParams(OnlineParams):
    """Parameters of the per-column online alibi-detect wrappers (CVM, FET)."""

    window_sizes: list[int] = Field(
        [20, 100],
        min_length=1,
        description="test windows (rows): short ones react fast to large shifts, long ones see small shifts",
    )

    @model_validator(mode="after")
    def _online(self) -> AlibiOnlineParams:
        if min(self.window_sizes) < 1:
            raise ValueError("window_sizes must be positive row counts")
        return self


class AlibiFETOnlineParams(AlibiOnlineParams):
    """Parameters of :class:`AlibiFETDriftOnline`."""

    alternative: Literal["greater", "less"] = Field(
        "greater", description="alarm on an increase (greater) or a decrease (less) of the rate of 1s"
    )
    lam: float = Field(0.99, gt=0.0, le=1.0, description="alibi's smoothing of the statistic (1: none)")


@dataclass
class _Tally(Generic[T]):
    """The rows one call fed to an online detector: how many drifted, and what the first drifting one and the
    last one said (each ``(stream time, ...)``)."""

    drift_rows: int = 0
    first: T | None = None
    last: T | None = None

    def add(self, drift: bool, said: T) -> None:
        self.last = said
        if drift:
            self.drift_rows += 1
            if self.first is None:
                self.first = said

    @property
    def shown(self) -> T | None:
        """What the result reports: the row where drift was first seen, else the newest."""
        return self.first if self.first is not None else self.last


class _AlibiOnlineDetector(DriftDetector):
    """Common wrapper of alibi's univariate online detectors: fit on the reference, feed each new row in order.

    ``test(rows)`` is stateful: it continues the stream where the previous call stopped. Rows with a missing
    or invalid value in a tested column are skipped (counted in the evidence). Once drift is flagged, alibi
    keeps flagging it while the windows differ from the reference, so a finding is raised on every evaluation
    until the stream is back to the reference distribution (the incident then resolves).
    """

    Params: ClassVar[type[DriftParams]] = AlibiOnlineParams
    alibi_class: ClassVar[str] = ""
    test_name: ClassVar[str] = ""
    kind_of_column: ClassVar[str] = ""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.detector_: Any = None
        self._pending: dict[str, Any] | None = None
        self.detected_at_: int | None = None
        self.fit_seconds_: float | None = None

    # ---- encoding (subclasses) ----------------------------------------------------------------------------
    def _eligible(self, reference: pd.DataFrame, column: str) -> bool:
        raise NotImplementedError

    def _encode(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(values, valid-row mask) of the tested columns."""
        raise NotImplementedError

    def _make(self, cd: Any, x: np.ndarray, n_bootstraps: int) -> Any:
        raise NotImplementedError

    def _learn(self, reference: pd.DataFrame) -> None:
        """Learn what ``_encode`` needs from the reference (nothing, for the univariate detectors)."""

    def _min_reference_rows(self) -> int:
        return 2

    def _min_bootstraps(self, n_features: int) -> int:
        p: Any = self.params
        return min_bootstraps(p.ert, n_features, p.window_sizes)

    # ---- fit ---------------------------------------------------------------------------------------------
    def _fit(self, reference: pd.DataFrame) -> None:
        cd = import_alibi_cd()
        p: Any = self.params
        named = bool(p.columns)
        bad = [c for c in self.columns_ if not self._eligible(reference, c)]
        if named and bad:
            raise DetectorError(f"{self.name} tests {self.kind_of_column} columns: {', '.join(bad)} are not")
        self.columns_ = [c for c in self.columns_ if c not in bad]
        if not self.columns_:
            raise DetectorError(
                f"{self.name}: the reference has no {self.kind_of_column} column (name them in 'columns')"
            )
        self._learn(reference)
        x, ok = self._encode(reference)
        x = x[ok]
        least = self._min_reference_rows()
        if len(x) < least:
            raise DetectorError(
                f"{self.name}: {len(x)} reference rows without missing values, it needs at least {least}"
                + (" (a smaller window_size needs fewer)" if least > 2 else "")
            )
        need = self._min_bootstraps(x.shape[1])
        n_boot = int(p.n_bootstraps or need)
        if n_boot < need:
            raise DetectorError(
                f"{self.name}: n_bootstraps={n_boot} is too few to target ert={p.ert:g} over {x.shape[1]} "
                f"column(s): alibi needs at least {need} (or lower ert, or test fewer columns)"
            )
        start = time.perf_counter()
        with _seeded(self._seed() % 2**32):
            try:
                self.detector_ = self._make(cd, x, n_boot)
            except (ValueError, ZeroDivisionError) as exc:
                raise DetectorError(
                    f"alibi {self.alibi_class} could not configure its thresholds: {exc} (try a larger "
                    "n_bootstraps, a smaller ert or fewer columns)"
                ) from exc
        self.fit_seconds_ = time.perf_counter() - start
        self.n_bootstraps_ = n_boot
        self.reference_digest_ = hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()[:16]
        self.detected_at_ = None
        pending, self._pending = self._pending, None
        if pending and pending.get("reference") == self.reference_digest_:
            self._restore(pending)

    # ---- the stream --------------------------------------------------------------------------------------
    def test(self, current: pd.DataFrame) -> DriftResult:
        """Feed the rows, in order, to the online detector; drift when alibi flags any of them."""
        if not self._fitted:
            raise DetectorError(f"{type(self).__name__}: call fit(reference) before test(current)")
        frame = to_frame(current).copy(deep=False)
        frame.columns = [str(c) for c in frame.columns]
        missing = [c for c in self.columns_ if c not in frame.columns]
        if missing:
            raise DetectorError(f"{type(self).__name__}: the current rows lack column(s) {', '.join(missing)}")
        cap = self.params.max_current_rows
        dropped = max(0, len(frame) - cap)
        if dropped:
            frame = frame.iloc[-cap:]
        return self._feed(frame.reset_index(drop=True), dropped)

    def _feed(self, frame: pd.DataFrame, dropped: int) -> DriftResult:
        p: Any = self.params
        det = self.detector_
        x, ok = self._encode(frame)
        rows = np.flatnonzero(ok)
        d = len(self.columns_)
        tally: _Tally[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = _Tally()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="All-NaN slice encountered")
            for i in rows:
                with _seeded([self._seed() % 2**32, int(det.t)]):  # FET breaks ties at random
                    out = det.predict(x[i], return_test_stat=True)["data"]
                self._trim()
                stats = np.asarray(out["test_stat"], dtype=float)  # (windows, columns)
                best = np.nanmax(stats, axis=0)
                window = np.where(np.isnan(stats).all(axis=0), -1, np.argmax(np.nan_to_num(stats, nan=-np.inf), 0))
                thr = np.broadcast_to(np.asarray(out["threshold"], dtype=float).ravel(), (d,))
                tally.add(bool(out["is_drift"]), (int(out["time"]), best, thr, window))
        self._track_episode(tally, len(rows))
        shown, drift_rows = tally.shown, tally.drift_rows
        columns: dict[str, ColumnDrift] = {}
        if shown is not None:
            _, best, thr, window = shown
            for j, c in enumerate(self.columns_):
                stat, limit = float(best[j]), float(thr[j])
                flagged = bool(math.isfinite(stat) and math.isfinite(limit) and stat > limit)
                w = int(p.window_sizes[window[j]]) if window[j] >= 0 else None
                columns[c] = ColumnDrift(
                    c, self.test_name, stat, None, None, flagged, {"threshold": limit, "window": w}
                )
        t = int(det.t)
        details = {
            **self._stream_details(t, drift_rows, len(rows), int(len(frame) - len(rows)), dropped),
            "window_sizes": list(p.window_sizes),
        }
        if drift_rows:
            drifted = [c for c, col in columns.items() if col.drift]
            summary = (
                f"alibi {self.alibi_class}: drift since row {self.detected_at_} of the stream "
                f"({drift_rows} of {len(rows)} new rows over the threshold; {', '.join(drifted[:5]) or 'columns'})"
            )
        else:
            summary = f"alibi {self.alibi_class}: no drift over {len(rows)} new rows (row {t}, ERT {p.ert:g} rows)"
        return DriftResult(bool(drift_rows), summary, columns, None, details)

    def _stream_details(self, t: int, drift_rows: int, fed: int, skipped: int, dropped: int) -> dict[str, Any]:
        """What every online wrapper reports about the stream: where it is, the episode, what this call fed,
        and how its thresholds were set."""
        p: Any = self.params
        return {
            "backend": "alibi-detect",
            "online": True,
            "t": t,
            "detected_at": self.detected_at_,
            "drift_rows": drift_rows,
            "rows_fed": fed,
            "rows_skipped": skipped,
            "rows_dropped": dropped,
            "ert": p.ert,
            "n_bootstraps": self.n_bootstraps_,
            "fit_seconds": self.fit_seconds_,
        }

    def _track_episode(self, tally: _Tally[tuple[Any, ...]], fed: int) -> None:
        """Keep when the current drift episode started (the stream time of its first drifting row); a stream
        fed back within the thresholds ends it, so a later drift is a new one."""
        if tally.drift_rows:
            if self.detected_at_ is None and tally.first is not None:
                self.detected_at_ = int(tally.first[0])
        elif fed:
            self.detected_at_ = None

    def _trim(self) -> None:
        """Keep only what alibi's next ``predict`` reads (it would otherwise keep the whole stream)."""
        det = self.detector_
        w = int(det.max_ws)
        if len(det.xs) > w:
            det.xs = det.xs[-w:]
        if len(det.test_stats) > 1:
            det.test_stats = det.test_stats[-1:]
        if len(det.drift_preds) > 1:
            det.drift_preds = det.drift_preds[-1:]

    # ---- state -------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The base state (warm-up rows) plus the stream position: ``t``, the last ``max(window_sizes)`` rows
        fed (encoded) and the last statistics, tied to a digest of the reference they were tested against."""
        state = super().state_dict()
        if self.detector_ is None:
            if self._pending:
                state["online"] = dict(self._pending)  # restored but not refitted yet: keep it
            return state
        state["online"] = json_safe(
            {
                "reference": self.reference_digest_,
                "t": int(self.detector_.t),
                **self._stream_state(),
                "detected_at": self.detected_at_,
            }
        )
        return state

    def _stream_state(self) -> dict[str, Any]:
        """What ``_restore`` needs besides ``t``: the last rows fed (encoded) and the last statistics."""
        det = self.detector_
        k = min(int(det.t), int(det.max_ws))
        recent = np.asarray(det.xs)[-k:] if k else np.zeros((0, len(self.columns_)))
        last = np.asarray(det.test_stats[-1]).tolist() if len(det.test_stats) else None
        return {"recent": recent.tolist(), "last_stats": last}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        online = state.get("online")
        self._pending = dict(online) if isinstance(online, Mapping) else None
        super().load_state_dict(state)  # may refit from warm-up rows, which applies the pending state
        pending = self._pending
        if pending and self.detector_ is not None and pending.get("reference") == self.reference_digest_:
            self._pending = None
            self._restore(pending)

    def _restore(self, saved: Mapping[str, Any]) -> None:
        det = self.detector_
        det.reset_state()
        d = len(self.columns_)
        recent = np.asarray(saved.get("recent") or [], dtype=float).reshape(-1, d)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="All-NaN slice encountered")
            for row in recent:  # score() updates alibi's windows without recording a prediction
                det.score(row.astype(det.x_ref.dtype))
        det.t = int(saved.get("t", len(recent)))
        last = saved.get("last_stats")
        if last is not None:
            stats = np.array([[np.nan if v is None else v for v in r] for r in last], dtype=float)
            det.test_stats = stats[None, :, :]
        else:
            det.test_stats = np.empty([0, len(det.window_sizes), d])
        det.drift_preds = np.array([])
        at = saved.get("detected_at")
        self.detected_at_ = None if at is None else int(at)


class AlibiCVMDriftOnline(_AlibiOnlineDetector):
    """alibi-detect CVMDriftOnline: online Cramér-von Mises test of continuous columns, one row at a time.

    Without ``columns``: every numeric reference column with more than two distinct values.

    >>> det = AlibiCVMDriftOnline(ert=500, window_sizes=[10, 50])
    >>> det.params.n_bootstraps is None, det.params.max_reference_rows
    (True, 500)
    """

    alibi_class = "CVMDriftOnline"
    test_name = "cvm-online"
    kind_of_column = "continuous (numeric)"
    name: ClassVar[str] = "alibi_cvm_online"

    def _eligible(self, reference: pd.DataFrame, column: str) -> bool:
        s = reference[column]
        if pd.api.types.is_bool_dtype(s):
            return False
        num = pd.to_numeric(s, errors="coerce")
        return bool(num.notna().sum() >= 0.99 * max(int(s.notna().sum()), 1) and num.nunique() > 2)

    def _encode(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        x = numeric_matrix(frame, self.columns_)
        return x, np.isfinite(x).all(axis=1)

    def _make(self, cd: Any, x: np.ndarray, n_bootstraps: int) -> Any:
        p: Any = self.params
        return cd.CVMDriftOnline(
            x, ert=p.ert, window_sizes=list(p.window_sizes), n_bootstraps=n_bootstraps, verbose=False
        )


_BINARY = {"0": 0.0, "1": 1.0, "false": 0.0, "true": 1.0, "0.0": 0.0, "1.0": 1.0}


def _binary(value: Any) -> float:
    """0.0 / 1.0 for 0, 1, False, True (or their text), NaN for anything else."""
    if isinstance(value, bool | np.bool_):
        return float(value)
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value) if value in (0, 1) else math.nan
    if isinstance(value, str):
        return _BINARY.get(value.strip().lower(), math.nan)
    return math.nan


class AlibiFETDriftOnline(_AlibiOnlineDetector):
    """alibi-detect FETDriftOnline: online Fisher exact test of binary columns (0/1, true/false), row by row.

    Tests whether the rate of 1s moved up (``alternative: greater``) or down (``less``). Without ``columns``:
    every reference column whose values are all 0/1 or true/false.

    >>> AlibiFETDriftOnline(alternative="less").params.lam
    0.99
    """

    Params = AlibiFETOnlineParams
    alibi_class = "FETDriftOnline"
    test_name = "fet-online"
    kind_of_column = "binary (0/1, true/false)"
    name: ClassVar[str] = "alibi_fet_online"

    def _eligible(self, reference: pd.DataFrame, column: str) -> bool:
        s = reference[column].dropna()
        return bool(len(s)) and not np.isnan(np.array([_binary(v) for v in s], dtype=float)).any()

    def _encode(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        x = np.array([[_binary(v) for v in frame[c]] for c in self.columns_], dtype=float).T.reshape(len(frame), -1)
        ok = np.isfinite(x).all(axis=1)
        return np.where(ok[:, None], x, 0.0).astype(np.int64), ok

    def _make(self, cd: Any, x: np.ndarray, n_bootstraps: int) -> Any:
        p: Any = self.params
        return cd.FETDriftOnline(
            x,
            ert=p.ert,
            window_sizes=list(p.window_sizes),
            n_bootstraps=n_bootstraps,
            alternative=p.alternative,
            lam=p.lam,
            verbose=False,
        )


# ---- multivariate online detectors (MMDDriftOnline, LSDDDriftOnline: alibi's PyTorch backend, CPU) ----------
#
# One statistic over all tested columns, one sliding window of ``window_size`` rows. alibi starts the window
# filled with reference rows and simulates ``n_bootstraps`` streams without drift (drawing from torch's
# global generator, seeded here like numpy's above) to set one threshold per step of the first window, the
# last one after that; the ERT counts rows from the first one fed. The columns are standardised with the
# reference's mean and standard deviation (MMD's kernel bandwidth is the median distance between reference
# rows, so a column on a large scale would otherwise drown the others).
#
# State. alibi keeps the window, the kernel values against it, and every statistic and prediction (trimmed
# after each row, as above); the wrappers keep the last ``window_size`` rows fed (encoded) themselves.
# ``load_state_dict`` resets alibi's window to its initial reference rows and replays the saved rows through
# ``score``, which rebuilds the window and its kernel values exactly, then sets ``t`` and the last statistic.


def min_bootstraps_window(ert: float, window_size: int) -> int:
    """The fewest simulated streams from which alibi can set the thresholds of one window (25 % margin).

    alibi takes the ``1 - 1/ert`` quantile of the simulated statistics at each of the ``window_size`` steps
    of the first window and drops the streams that crossed it; a quantile needs ``ert`` streams left.

    >>> min_bootstraps_window(1000, 20)
    1274
    >>> min_bootstraps_window(500, 50)
    690
    """
    needed = 1.25 * ert / (1.0 - 1.0 / ert) ** (window_size - 1)
    return math.ceil(needed)


class AlibiWindowOnlineParams(OnlineParams):
    """Parameters of the multivariate online alibi-detect wrappers (MMD, LSDD; one window over all columns)."""

    window_size: int = Field(
        20,
        ge=2,
        le=500,
        description="test window (rows): a short one reacts fast to a large shift, a long one sees a small "
        "shift; the threshold simulation's time grows with it",
    )
    backend: Literal["pytorch", "tensorflow"] = Field(
        "pytorch", description="alibi's backend (the alibi environment installs pytorch, CPU)"
    )
    torch_threads: int = TORCH_THREADS


class _AlibiWindowOnlineDetector(_AlibiOnlineDetector):
    """Common wrapper of alibi's multivariate online detectors: one statistic over all numeric columns.

    Without ``columns``: every numeric reference column with more than one distinct value. The evidence has
    the statistic and threshold (no per-column test: the statistic is joint) and, to show which columns
    moved, the mean of the current window per column in reference standard deviations (``window_shift_sd``).
    """

    Params: ClassVar[type[DriftParams]] = AlibiWindowOnlineParams
    kind_of_column = "numeric"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.recent_: deque[np.ndarray] = deque()

    def _eligible(self, reference: pd.DataFrame, column: str) -> bool:
        s = reference[column]
        num = pd.to_numeric(s, errors="coerce")
        return bool(num.notna().sum() >= 0.99 * max(int(s.notna().sum()), 1) and num.nunique() > 1)

    def _learn(self, reference: pd.DataFrame) -> None:
        x = numeric_matrix(reference, self.columns_)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=RuntimeWarning)  # an all-missing column: no mean
            center, sd = np.nanmean(x, axis=0), np.nanstd(x, axis=0)
        self.center_ = np.where(np.isfinite(center), center, 0.0)
        self.scale_ = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
        self.recent_ = deque(maxlen=int(self.params.window_size))  # type: ignore[attr-defined]

    def _encode(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        x = numeric_matrix(frame, self.columns_)
        ok = np.isfinite(x).all(axis=1)
        z = np.where(ok[:, None], (x - self.center_) / self.scale_, 0.0)
        return z.astype(np.float32), ok

    def _min_bootstraps(self, n_features: int) -> int:
        p: Any = self.params
        return min_bootstraps_window(p.ert, p.window_size)

    def _options(self) -> dict[str, Any]:
        return {}

    def _make(self, cd: Any, x: np.ndarray, n_bootstraps: int) -> Any:
        p: Any = self.params
        extra = {"device": "cpu"} if p.backend == "pytorch" else {}
        try:
            with _torch(p.torch_threads, self._seed() % 2**32):
                return getattr(cd, self.alibi_class)(
                    x,
                    ert=p.ert,
                    window_size=p.window_size,
                    backend=p.backend,
                    n_bootstraps=n_bootstraps,
                    verbose=False,
                    **extra,
                    **self._options(),
                )
        except (ImportError, NotImplementedError) as exc:
            raise _backend_error(self.alibi_class, p.backend, exc) from exc

    def _feed(self, frame: pd.DataFrame, dropped: int) -> DriftResult:
        p: Any = self.params
        det = self.detector_
        x, ok = self._encode(frame)
        rows = np.flatnonzero(ok)
        tally: _Tally[tuple[int, float, float]] = _Tally()
        with _torch(p.torch_threads):
            for i in rows:
                out = det.predict(x[i], return_test_stat=True)["data"]
                self.recent_.append(x[i])
                self._trim()
                tally.add(bool(out["is_drift"]), (int(out["time"]), float(out["test_stat"]), float(out["threshold"])))
        self._track_episode(tally, len(rows))
        shown, drift_rows = tally.shown, tally.drift_rows
        t = int(det.t)
        window = np.asarray(self.recent_, dtype=float).reshape(-1, len(self.columns_))
        mean = window.mean(axis=0) if len(window) else np.zeros(len(self.columns_))
        shift = {c: round(float(v), 4) for c, v in zip(self.columns_, mean, strict=True)}
        details = {
            **self._stream_details(t, drift_rows, len(rows), int(len(frame) - len(rows)), dropped),
            "alibi_backend": p.backend,
            "statistic": None if shown is None else shown[1],
            "threshold": None if shown is None else shown[2],
            "tested_columns": list(self.columns_),
            "window_shift_sd": shift,
            "window_size": p.window_size,
        }
        if drift_rows:
            moved = sorted(self.columns_, key=lambda c: -abs(shift[c]))
            summary = (
                f"alibi {self.alibi_class}: drift since row {self.detected_at_} of the stream ({drift_rows} of "
                f"{len(rows)} new rows over the threshold; largest window shift: {', '.join(moved[:3])})"
            )
        else:
            summary = f"alibi {self.alibi_class}: no drift over {len(rows)} new rows (row {t}, ERT {p.ert:g} rows)"
        return DriftResult(bool(drift_rows), summary, {}, None, details)

    def _backend_detector(self) -> Any:
        """alibi's MMDDriftOnline/LSDDDriftOnline delegate to a backend object that holds the state."""
        return getattr(self.detector_, "_detector", self.detector_)

    def _trim(self) -> None:
        det = self._backend_detector()
        if len(det.test_stats) > 1:
            det.test_stats = det.test_stats[-1:]
        if len(det.drift_preds) > 1:
            det.drift_preds = det.drift_preds[-1:]

    def _stream_state(self) -> dict[str, Any]:
        det = self.detector_
        last = float(det.test_stats[-1]) if len(det.test_stats) else None
        return {"recent": [r.tolist() for r in self.recent_], "last_stats": last}

    def _restore(self, saved: Mapping[str, Any]) -> None:
        p: Any = self.params
        det = self._backend_detector()
        d = len(self.columns_)
        recent = np.asarray(saved.get("recent") or [], dtype=np.float32).reshape(-1, d)[-int(p.window_size) :]
        det.reset_state()
        self.recent_.clear()
        with _torch(p.torch_threads):
            for row in recent:  # score() slides alibi's window without recording a prediction
                det.score(row)
                self.recent_.append(row)
        det.t = int(saved.get("t", len(recent)))
        last = saved.get("last_stats")
        det.test_stats = np.array([] if last is None else [float(last)])
        det.drift_preds = np.array([])
        at = saved.get("detected_at")
        self.detected_at_ = None if at is None else int(at)


class AlibiMMDDriftOnline(_AlibiWindowOnlineDetector):
    """alibi-detect MMDDriftOnline: online kernel (MMD) test of all numeric columns together, row by row.

    Fit (the threshold simulation) takes a few seconds with the defaults (500 reference rows, window 20,
    ERT 1000); each row fed costs under a millisecond.

    >>> det = AlibiMMDDriftOnline(ert=500, window_size=10)
    >>> det.params.backend, det.params.n_bootstraps is None
    ('pytorch', True)
    """

    alibi_class = "MMDDriftOnline"
    test_name = "mmd-online"
    name: ClassVar[str] = "alibi_mmd_online"

    def _min_reference_rows(self) -> int:
        return 3 * int(self.params.window_size)  # type: ignore[attr-defined]


class AlibiLSDDDriftOnline(_AlibiWindowOnlineDetector):
    """alibi-detect LSDDDriftOnline: online least-squares density difference of all numeric columns, row by row.

    ``2 * window_size`` reference rows become the kernel centres, the rest the reference window; fit takes a
    few seconds with the defaults, each row fed under a millisecond.

    >>> AlibiLSDDDriftOnline().params.window_size
    20
    """

    alibi_class = "LSDDDriftOnline"
    test_name = "lsdd-online"
    name: ClassVar[str] = "alibi_lsdd_online"

    def _min_reference_rows(self) -> int:
        return 5 * int(self.params.window_size)  # type: ignore[attr-defined]
