"""The shared shape of every drift detector: parameters, ``fit``/``test``, and the daemon's ``evaluate``.

A drift detector is used two ways. Offline (``aiops drift``, notebooks, the benchmark) it is scikit-learn
shaped: ``fit(reference)`` learns a profile of the reference once, ``test(current)`` returns a
:class:`aiops.detection.DriftResult` per window. Inside the daemon it is a check detector: ``evaluate(frame)``
loads the reference named by the ``reference`` parameter on first use (CSV, JSONL or Parquet, sampled down to
``max_reference_rows``), tests the frame's rows and turns a drift decision into one :class:`Finding` whose
evidence is the full per-column result, so a person can see which columns moved, by how much, and how sure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aiops.detection import DriftResult
from aiops.errors import DetectorError
from aiops.types import Finding, Frame, Severity, json_safe

from ._io import read_table, rows_to_frame


class DriftParams(BaseModel):
    """Parameters every drift detector shares."""

    model_config = ConfigDict(extra="forbid")

    reference: str | None = Field(
        None, description="path of the reference table (CSV, JSONL or Parquet), loaded on first evaluate"
    )
    columns: list[str] | None = Field(None, description="columns to test; default: every reference column")
    alpha: float = Field(0.002, gt=0.0, lt=1.0, description="family-wise false-alarm probability per window")
    max_reference_rows: int = Field(50_000, ge=10, description="reference rows kept (uniform random sample)")
    max_current_rows: int = Field(50_000, ge=10, description="current rows tested (uniform random sample)")
    seed: int = Field(0, description="seed of every sampling step, so that decisions are reproducible")
    warmup_rows: int = Field(
        0, ge=0, description="without a reference file: the first N rows seen become the reference (0: off)"
    )
    severity: Severity = Severity.WARNING


def to_frame(data: Any) -> pd.DataFrame:
    """Accept a DataFrame, a mapping of columns, or a list of dict rows; anything else is a DetectorError."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, Mapping) or (isinstance(data, list) and all(isinstance(r, Mapping) for r in data)):
        try:
            return pd.DataFrame(data)
        except ValueError as exc:
            raise DetectorError(f"cannot build a table from the given data: {exc}") from exc
    raise DetectorError(f"expected a pandas DataFrame, got {type(data).__name__}")


class DriftDetector:
    """Base class: validates parameters, caps sample sizes, and adapts ``test`` to the check contract."""

    Params: ClassVar[type[BaseModel]] = DriftParams
    name: ClassVar[str] = "drift"
    check_part: ClassVar[str] = "data_drift"

    def __init__(self, **params: Any) -> None:
        try:
            self.params = self.Params.model_validate(params)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(x) for x in err['loc']) or 'params'}: {err['msg']}" for err in exc.errors()
            )
            raise DetectorError(f"{type(self).__name__}: invalid parameters: {problems}") from exc
        self._fitted = False
        self._warmup: list[dict[str, Any]] = []

    # ---- scikit-learn shaped API -------------------------------------------------------------------------
    def fit(self, reference: pd.DataFrame) -> DriftDetector:
        """Learn the reference profile once; the reference frame is not kept (only its statistics)."""
        frame = self._select(to_frame(reference), "reference")
        if len(frame) == 0:
            raise DetectorError(f"{type(self).__name__}: the reference has no rows")
        cap = int(getattr(self.params, "max_reference_rows", 50_000))
        if len(frame) > cap:
            frame = frame.sample(n=cap, random_state=self._seed()).sort_index()
        self.columns_: list[str] = [str(c) for c in frame.columns]
        self.n_reference_: int = len(frame)
        self._fit(frame.reset_index(drop=True))
        self._fitted = True
        return self

    def test(self, current: pd.DataFrame) -> DriftResult:
        """Test one window of current rows against the fitted reference."""
        if not self._fitted:
            raise DetectorError(f"{type(self).__name__}: call fit(reference) before test(current)")
        frame = to_frame(current).copy(deep=False)  # never rename the caller's columns in place
        frame.columns = [str(c) for c in frame.columns]
        if len(frame) == 0:
            return DriftResult(drift=False, summary="empty window: nothing to test", details={"n_current": 0})
        cap = int(getattr(self.params, "max_current_rows", 50_000))
        if len(frame) > cap:
            frame = frame.sample(n=cap, random_state=self._seed()).sort_index()
        return self._test(frame.reset_index(drop=True))

    # ---- subclass hooks ----------------------------------------------------------------------------------
    def _fit(self, reference: pd.DataFrame) -> None:
        raise NotImplementedError

    def _test(self, current: pd.DataFrame) -> DriftResult:
        raise NotImplementedError

    # ---- check-detector contract -------------------------------------------------------------------------
    def evaluate(self, frame: Frame) -> list[Finding]:
        """Findings for a frame of table rows: one ``drift`` finding when the window drifted, else none."""
        if not frame.rows:
            return []
        rows = frame.rows
        if not self._fitted:
            path = getattr(self.params, "reference", None)
            warmup = int(getattr(self.params, "warmup_rows", 0))
            if path:
                cap = int(getattr(self.params, "max_reference_rows", 50_000))
                self.fit(read_table(path, max_rows=cap, seed=self._seed()))
            elif warmup > 0:
                # the first rows seen are the reference; no finding until it is complete
                take = warmup - len(self._warmup)
                self._warmup.extend(dict(r) for r in rows[:take])
                rows = rows[take:]
                if len(self._warmup) < warmup:
                    return []
                self.fit(rows_to_frame(self._warmup))
                if not rows:
                    return []
            else:
                raise DetectorError(
                    f"{type(self).__name__}: set the 'reference' parameter to a table path (or 'warmup_rows')"
                )
        result = self.test(rows_to_frame(rows, frame.columns))
        if not result.drift:
            return []
        score = 1.0 if result.p_value is None else float(min(1.0, max(0.0, 1.0 - result.p_value)))
        return [
            Finding(
                kind="drift",
                detector=self.name,
                summary=result.summary,
                severity=Severity(getattr(self.params, "severity", Severity.WARNING)),
                score=score,
                labels={"check_part": self.check_part},
                evidence=result.to_dict(),
                observed_at=frame.collected_at,
            )
        ]

    def state_dict(self) -> dict[str, Any]:
        """The warm-up rows when the reference is learned from the stream (so a restart does not relearn it).

        With a reference file nothing is persisted: the profile is rebuilt from the file after a restart.
        """
        if getattr(self.params, "reference", None) or not int(getattr(self.params, "warmup_rows", 0)):
            return {}
        return {"warmup_rows": json_safe(self._warmup)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        rows = state.get("warmup_rows")
        if not rows:
            return
        self._warmup = [dict(r) for r in rows]
        if len(self._warmup) >= int(getattr(self.params, "warmup_rows", 0)) > 0:
            self.fit(rows_to_frame(self._warmup))

    # ---- helpers -----------------------------------------------------------------------------------------
    def _seed(self) -> int:
        return int(getattr(self.params, "seed", 0))

    def _select(self, frame: pd.DataFrame, what: str) -> pd.DataFrame:
        frame = frame.copy(deep=False)  # only the column labels change: no data copy
        frame.columns = [str(c) for c in frame.columns]
        wanted = getattr(self.params, "columns", None)
        if wanted:
            missing = [c for c in wanted if c not in frame.columns]
            if missing:
                raise DetectorError(f"{type(self).__name__}: {what} lacks column(s) {', '.join(missing)}")
            frame = frame[list(wanted)]
        else:
            # timestamps always "drift" (time moves on): they are not tested unless named in ``columns``
            clock = [
                c
                for c in frame.columns
                if pd.api.types.is_datetime64_any_dtype(frame[c]) or pd.api.types.is_timedelta64_dtype(frame[c])
            ]
            if clock:
                frame = frame.drop(columns=clock)
        if frame.shape[1] == 0:
            raise DetectorError(f"{type(self).__name__}: the {what} has no columns")
        return frame


def numeric_matrix(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Columns coerced to float (unparseable values and non-finite numbers become NaN)."""
    out = np.full((len(frame), len(columns)), np.nan)
    for j, c in enumerate(columns):
        if c in frame.columns:
            v = np.array(pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float, na_value=np.nan))
            v[~np.isfinite(v)] = np.nan
            out[:, j] = v
    return out


def fmt_p(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "n/a"
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"
