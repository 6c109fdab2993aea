"""Data-quality detectors over table rows: schema, null rate, value range, allowed categories, duplicate keys,
freshness and volume.

Every finding has ``kind="data_quality"`` and labels ``{"column": ..., "problem": ...}`` so that each problem
of each column is its own incident (acknowledged, silenced and resolved on its own). The evidence says how
bad (count, rate, the limit) and shows up to ``max_examples`` offending rows, with the columns named in
``sensitive_columns`` (and secret-looking ones) replaced by ``***``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from aiops.durations import Duration
from aiops.plugins import Detector
from aiops.redact import MASK, is_secret_key
from aiops.types import Finding, Frame, Severity, json_safe

ColumnType = Literal["int", "float", "number", "str", "bool", "timestamp", "any"]


class QualityParams(BaseModel):
    """Parameters every data-quality detector shares."""

    model_config = ConfigDict(extra="forbid")

    sensitive_columns: list[str] = Field(default_factory=list, description="columns masked in example rows")
    max_examples: int = Field(3, ge=0, le=20, description="offending rows shown in a finding")
    severity: Severity = Field(Severity.WARNING, description="severity of the findings")


class _Quality(Detector):
    """Shared plumbing: parameters, example rows with redaction, finding construction, stateless default."""

    Params: ClassVar[type[BaseModel]] = QualityParams
    name: ClassVar[str] = "quality"

    def examples(
        self, rows: Sequence[Mapping[str, Any]], indexes: Iterable[int], focus: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        """Up to ``max_examples`` rows (the offending ``focus`` columns first, at most 40 columns), sensitive
        and secret-looking columns masked, long values cut."""
        hidden = set(self.params.sensitive_columns)
        out = []
        for i in list(indexes)[: self.params.max_examples]:
            row = rows[i]
            keys = [k for k in focus if k in row] + [k for k in row if k not in focus]
            out.append({str(k): MASK if (k in hidden or is_secret_key(str(k))) else _short(row[k]) for k in keys[:40]})
        return out

    def share_finding(
        self,
        frame: Frame,
        columns: Sequence[str],
        problem: str,
        summary: str,
        offending: Sequence[int],
        rows: int,
        rate: float,
        details: Mapping[str, Any],
    ) -> Finding:
        """A finding about the ``offending`` rows, a share ``rate`` of ``rows`` checked in ``columns``: the
        count, the share and the check's own ``details``, then example rows with those columns first."""
        evidence = {"count": len(offending), "rows": rows, "rate": rate, **details}
        evidence["examples"] = self.examples(frame.rows, offending, columns)
        return self.finding(frame, ",".join(columns), problem, summary, evidence)

    def finding(self, frame: Frame, column: str, problem: str, summary: str, evidence: Mapping[str, Any]) -> Finding:
        score = evidence.get("rate")
        return Finding(
            kind="data_quality",
            detector=self.name,
            summary=summary,
            severity=self.params.severity,
            score=float(score) if isinstance(score, int | float) and math.isfinite(score) else 1.0,
            labels={"column": column, "problem": problem},
            evidence=json_safe(dict(evidence)),
            observed_at=frame.collected_at,
        )

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > 80:
        return value[:80] + "..."
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value if isinstance(value, str | int | float | bool) or value is None else _short(str(value))


def is_null(value: Any) -> bool:
    """None and NaN are missing values (an empty string is a value)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _columns(frame: Frame) -> list[str]:
    if frame.columns:
        return list(frame.columns)
    seen: dict[str, None] = {}
    for row in frame.rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def matches_type(value: Any, kind: str) -> bool:
    """Whether a (non-null) value is of a declared column type.

    >>> matches_type(3, "float"), matches_type("3", "int"), matches_type(True, "int"), matches_type(1.0, "int")
    (True, False, False, True)
    """
    if kind == "any":
        return True
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == "int":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if kind in ("float", "number"):
        return isinstance(value, int | float)
    if kind == "str":
        return isinstance(value, str)
    if kind == "timestamp":
        return _epoch(value) is not None
    return False


def _epoch(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            return None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp()
    return None


# ---------------------------------------------------------------------- schema


class SchemaParams(QualityParams):
    columns: dict[str, ColumnType] = Field(description="expected columns and their types")
    allow_extra: bool = Field(False, description="accept columns that are not declared")
    max_type_error_rate: float = Field(0.0, ge=0, le=1, description="share of wrongly typed values tolerated")


class SchemaDetector(_Quality):
    """Missing and unexpected columns, and values of the wrong type, against a declared schema.

    Why: an upstream change that renames a column or starts writing strings into a numeric feature breaks a
    model silently; catching it at the table is cheaper than debugging the predictions.

    >>> det = SchemaDetector(columns={"age": "int", "city": "str"})
    >>> rows = ({"age": 31, "zip": "0"}, {"age": "n/a", "zip": "1"})
    >>> sorted((f.labels["column"], f.labels["problem"]) for f in det.evaluate(Frame("t", 0.0, rows=rows)))
    [('age', 'wrong_type'), ('city', 'missing_column'), ('zip', 'extra_column')]
    """

    Params: ClassVar[type[BaseModel]] = SchemaParams

    @classmethod
    def test_params(cls) -> list[dict[str, Any]]:
        return [{"columns": {"id": "int", "score": "float"}}]

    name: ClassVar[str] = "schema"

    def evaluate(self, frame: Frame) -> list[Finding]:
        if not frame.rows:
            return []
        p = self.params
        present = _columns(frame)
        out = []
        for col in p.columns:
            if col not in present:
                out.append(
                    self.finding(
                        frame, col, "missing_column", f"column {col} is missing", {"rate": 1.0, "present": present}
                    )
                )
        if not p.allow_extra:
            for col in present:
                if col not in p.columns:
                    out.append(self.finding(frame, col, "extra_column", f"unexpected column {col}", {"rate": 1.0}))
        for col, kind in p.columns.items():
            if col not in present:
                continue
            bad = [
                i for i, r in enumerate(frame.rows) if not is_null(r.get(col)) and not matches_type(r.get(col), kind)
            ]
            rate = len(bad) / len(frame.rows)
            if bad and rate > p.max_type_error_rate:
                found = Counter(type(frame.rows[i].get(col)).__name__ for i in bad)
                summary = f"{len(bad)} of {len(frame.rows)} values of {col} are not {kind} ({rate:.1%})"
                details = {"expected": kind, "found": dict(found)}
                out.append(self.share_finding(frame, [col], "wrong_type", summary, bad, len(frame.rows), rate, details))
        return out


# ---------------------------------------------------------------------- null rate


class NullRateParams(QualityParams):
    columns: list[str] | None = Field(None, description="columns to check (default: all)")
    max_null_rate: float = Field(0.0, ge=0, le=1, description="share of nulls tolerated per column")
    per_column: dict[str, float] = Field(default_factory=dict, description="limits overriding max_null_rate")
    min_rows: int = Field(1, ge=1, description="judge only windows with at least this many rows")


class NullRateDetector(_Quality):
    """Columns whose share of missing values (None/NaN) exceeds a limit.

    Why: a broken join or a failing feature service shows up as a sudden burst of nulls long before a
    metric degrades.

    >>> det = NullRateDetector(max_null_rate=0.2)
    >>> rows = tuple({"a": 1.0, "b": None if i < 3 else 2.0} for i in range(10))
    >>> [(f.labels["column"], f.evidence["rate"]) for f in det.evaluate(Frame("t", 0.0, rows=rows))]
    [('b', 0.3)]
    """

    Params: ClassVar[type[BaseModel]] = NullRateParams
    name: ClassVar[str] = "null_rate"

    def evaluate(self, frame: Frame) -> list[Finding]:
        p = self.params
        n = len(frame.rows)
        if n < p.min_rows:
            return []
        out = []
        for col in p.columns or _columns(frame):
            nulls = [i for i, r in enumerate(frame.rows) if is_null(r.get(col))]
            rate = len(nulls) / n
            limit = p.per_column.get(col, p.max_null_rate)
            if nulls and rate > limit:
                summary = f"{col}: {rate:.1%} nulls (limit {limit:.1%})"
                out.append(self.share_finding(frame, [col], "null_rate", summary, nulls, n, rate, {"limit": limit}))
        return out


# ---------------------------------------------------------------------- value range


class Bounds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min: float | None = Field(None, description="smallest allowed value (inclusive)")
    max: float | None = Field(None, description="largest allowed value (inclusive)")


class ValueRangeParams(QualityParams):
    ranges: dict[str, Bounds] = Field(description="column -> {min, max}")
    max_violation_rate: float = Field(0.0, ge=0, le=1, description="share of out-of-range values tolerated")


class ValueRangeDetector(_Quality):
    """Numeric values outside ``[min, max]`` (and non-numeric values in a numeric column), per column.

    Why: unit changes (ms vs s), sentinel values (-1, 9999) and sensor faults produce values a model never
    saw; they are cheap to catch with bounds taken from the training data.

    >>> det = ValueRangeDetector(ranges={"age": {"min": 0, "max": 120}})
    >>> rows = ({"age": 30}, {"age": -1}, {"age": 999}, {"age": None})
    >>> [(f.labels["problem"], f.evidence["count"]) for f in det.evaluate(Frame("t", 0.0, rows=rows))]
    [('out_of_range', 2)]
    """

    Params: ClassVar[type[BaseModel]] = ValueRangeParams

    @classmethod
    def test_params(cls) -> list[dict[str, Any]]:
        return [{"ranges": {"score": {"min": 0, "max": 1}}}]

    name: ClassVar[str] = "value_range"

    def evaluate(self, frame: Frame) -> list[Finding]:
        p = self.params
        out = []
        for col, bounds in p.ranges.items():
            bad, checked, rate = _failing(frame.rows, col, partial(_within, bounds=bounds))
            if bad and rate > p.max_violation_rate:
                values = [frame.rows[i].get(col) for i in bad]
                numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
                summary = f"{len(bad)} values of {col} outside [{bounds.min}, {bounds.max}] ({rate:.1%})"
                details = {
                    "min_allowed": bounds.min,
                    "max_allowed": bounds.max,
                    "min_seen": min(numbers) if numbers else None,
                    "max_seen": max(numbers) if numbers else None,
                }
                out.append(self.share_finding(frame, [col], "out_of_range", summary, bad, checked, rate, details))
        return out


# ---------------------------------------------------------------------- categories


class CategoriesParams(QualityParams):
    allowed: dict[str, list[str | int | float | bool]] = Field(description="column -> allowed values")
    max_violation_rate: float = Field(0.0, ge=0, le=1, description="share of unexpected values tolerated")


class CategoriesDetector(_Quality):
    """Values of a categorical column that are not among the allowed ones.

    Why: a new category (a country code, a product type) reaches a model whose encoder never saw it; a
    typo'd label silently becomes its own class.

    >>> det = CategoriesDetector(allowed={"color": ["red", "green"]})
    >>> rows = ({"color": "red"}, {"color": "blue"}, {"color": "blue"}, {"color": None})
    >>> [(f.labels["column"], f.evidence["unexpected"]) for f in det.evaluate(Frame("t", 0.0, rows=rows))]
    [('color', {'blue': 2})]
    """

    Params: ClassVar[type[BaseModel]] = CategoriesParams

    @classmethod
    def test_params(cls) -> list[dict[str, Any]]:
        return [{"allowed": {"country": ["fr", "de"]}}]

    name: ClassVar[str] = "categories"

    def evaluate(self, frame: Frame) -> list[Finding]:
        p = self.params
        out = []
        for col, allowed in p.allowed.items():
            accepted = {_category_key(v) for v in allowed}
            bad, checked, rate = _failing(frame.rows, col, partial(_among, accepted=accepted))
            if bad and rate > p.max_violation_rate:
                unexpected = Counter(str(_short(frame.rows[i].get(col))) for i in bad)
                if col in p.sensitive_columns:
                    unexpected = Counter({MASK: len(bad)})
                summary = f"{len(bad)} values of {col} not among the {len(accepted)} allowed ({rate:.1%})"
                details = {"unexpected": dict(unexpected.most_common(10))}
                out.append(
                    self.share_finding(frame, [col], "unexpected_category", summary, bad, checked, rate, details)
                )
        return out


def _failing(rows: Sequence[Mapping[str, Any]], column: str, ok: Callable[[Any], bool]) -> tuple[list[int], int, float]:
    """The rows whose value of ``column`` is present and not ``ok``, how many present values were checked,
    and the failing share of those (a missing value is the completeness check's business, not this one's)."""
    bad: list[int] = []
    checked = 0
    for i, row in enumerate(rows):
        value = row.get(column)
        if is_null(value):
            continue
        checked += 1
        if not ok(value):
            bad.append(i)
    return bad, checked, len(bad) / checked if checked else 0.0


def _within(value: Any, bounds: Bounds) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False  # a string in a numeric column is out of any numeric range
    return not ((bounds.min is not None and value < bounds.min) or (bounds.max is not None and value > bounds.max))


def _among(value: Any, accepted: set[str]) -> bool:
    return _category_key(value) in accepted


def _category_key(value: Any) -> str:
    """Compare categories by text, with integral floats as integers (CSV gives 1.0 where a list says 1)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return json.dumps(value) if isinstance(value, bool) else str(value)


# ---------------------------------------------------------------------- duplicate keys


class DuplicatesParams(QualityParams):
    key: list[str] = Field(min_length=1, description="columns that together must be unique")
    remember: int = Field(10_000, ge=0, description="keys of earlier ticks remembered to catch re-sent rows")
    max_duplicate_rate: float = Field(0.0, ge=0, le=1, description="share of duplicate rows tolerated")


class DuplicateKeysDetector(_Quality):
    """Rows whose key repeats within a tick or repeats a key seen in the last ``remember`` rows.

    Why: a retried pipeline step that appends its output twice double-counts everything downstream.

    >>> det = DuplicateKeysDetector(key=["id"])
    >>> rows = ({"id": 1}, {"id": 2}, {"id": 1})
    >>> [(f.labels["column"], f.evidence["count"]) for f in det.evaluate(Frame("t", 0.0, rows=rows))]
    [('id', 1)]
    >>> [f.evidence["count"] for f in det.evaluate(Frame("t", 1.0, rows=({"id": 2},)))]  # seen last tick
    [1]
    """

    Params: ClassVar[type[BaseModel]] = DuplicatesParams

    @classmethod
    def test_params(cls) -> list[dict[str, Any]]:
        return [{"key": ["id"]}]

    name: ClassVar[str] = "duplicates"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._seen: OrderedDict[str, None] = OrderedDict()

    def evaluate(self, frame: Frame) -> list[Finding]:
        p = self.params
        dups: list[int] = []
        keys: Counter[str] = Counter()
        checked = 0
        tick: set[str] = set()
        for i, row in enumerate(frame.rows):
            parts = [row.get(c) for c in p.key]
            if any(is_null(v) for v in parts):
                continue
            checked += 1
            digest = hashlib.blake2b(json.dumps(json_safe(parts)).encode(), digest_size=8).hexdigest()
            if digest in tick or digest in self._seen:
                dups.append(i)
                keys[json.dumps(json_safe(parts))] += 1
            tick.add(digest)
        for digest in tick:
            self._seen[digest] = None
            self._seen.move_to_end(digest)
        while len(self._seen) > p.remember:
            self._seen.popitem(last=False)
        rate = len(dups) / checked if checked else 0.0
        if not dups or rate <= p.max_duplicate_rate:
            return []
        column = ",".join(p.key)
        shown = dict(keys.most_common(5)) if not set(p.key) & set(p.sensitive_columns) else {MASK: len(dups)}
        summary = f"{len(dups)} rows repeat a key ({column}) ({rate:.1%})"
        return [self.share_finding(frame, p.key, "duplicate_key", summary, dups, checked, rate, {"keys": shown})]

    def state_dict(self) -> dict[str, Any]:
        return {"seen": list(self._seen)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        seen = state.get("seen")
        self._seen = OrderedDict.fromkeys(str(s) for s in seen) if isinstance(seen, list) else OrderedDict()


# ---------------------------------------------------------------------- freshness


class FreshnessParams(QualityParams):
    max_age: Duration = Field(description="the newest row (or last success) may be at most this old, e.g. 2h")
    timestamp_column: str | None = Field("timestamp", description="row column holding event times")
    series: str | None = Field(
        None, description="instead of rows: a series whose value is the last success time (epoch seconds)"
    )


class FreshnessDetector(_Quality):
    """The newest row (or the last successful run) is older than ``max_age``.

    Why: the most common pipeline failure is silence; a job that stopped writing produces no bad value to
    detect, only an ever older newest row. The newest time seen is kept in the state, so a tick without new
    rows is judged too (sources such as ``table`` always deliver a row-count series).

    >>> det = FreshnessDetector(max_age="1h", timestamp_column="ts")
    >>> det.evaluate(Frame("t", 3600.0, rows=({"ts": 100.0},)))
    []
    >>> [f.evidence["age_seconds"] for f in det.evaluate(Frame("t", 7300.0))]
    [7200.0]
    """

    Params: ClassVar[type[BaseModel]] = FreshnessParams

    @classmethod
    def test_params(cls) -> list[dict[str, Any]]:
        return [{"max_age": "1h"}]

    name: ClassVar[str] = "freshness"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.newest_: float | None = None

    def evaluate(self, frame: Frame) -> list[Finding]:
        p = self.params
        if p.series:
            for s in frame.series:
                if s.name == p.series and len(s):
                    value = _epoch(s.values[-1])
                    if value is not None:
                        self.newest_ = max(self.newest_ or value, value)
        elif p.timestamp_column:
            for row in frame.rows:
                value = _epoch(row.get(p.timestamp_column))
                if value is not None and (self.newest_ is None or value > self.newest_):
                    self.newest_ = value
        if self.newest_ is None:
            return []
        age = frame.collected_at - self.newest_
        if age <= p.max_age:
            return []
        column = p.series or p.timestamp_column or ""
        return [
            self.finding(
                frame,
                column,
                "stale",
                f"newest {column} is {age:.0f}s old (limit {p.max_age:.0f}s)",
                {
                    "age_seconds": age,
                    "max_age_seconds": p.max_age,
                    "newest": self.newest_,
                    "rate": min(1.0, age / p.max_age / 2),
                },
            )
        ]

    def state_dict(self) -> dict[str, Any]:
        return {"newest": self.newest_}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        value = state.get("newest")
        self.newest_ = float(value) if isinstance(value, int | float) and math.isfinite(value) else None


# ---------------------------------------------------------------------- volume


class VolumeParams(QualityParams):
    seasonality: Literal["hour_of_day", "hour_of_week", "none"] = Field(
        "hour_of_day", description="what 'usual' is compared with: the same hour of the day (UTC), of the week, any"
    )
    count_series: str | None = Field(
        "table_rows_read", description="series holding the new-row count (else the number of rows in the frame)"
    )
    min_history: int = Field(5, ge=1, description="ticks seen in a bucket before it is judged")
    tolerance: float = Field(0.5, gt=0, description="relative deviation from the usual count that is tolerated")
    z: float = Field(4.0, gt=0, description="and the deviation must exceed this many standard deviations")
    window: int = Field(50, ge=2, description="ticks per bucket the usual count is averaged over (exponential)")


class VolumeDetector(_Quality):
    """Row count per tick far from what is usual for this hour (of the day or week), learned online.

    Why: a fixed "at least 1000 rows" alerts every night and misses a half-empty Monday morning; comparing
    with the same hour's history adapts to daily and weekly cycles. Each bucket keeps an exponentially
    weighted mean and variance (JSON state, so a restart keeps what was learned); a tick is judged once its
    bucket has ``min_history`` ticks, and a count must be off by more than ``tolerance`` x the mean *and*
    ``z`` standard deviations.

    >>> det = VolumeDetector(seasonality="hour_of_day", min_history=3, count_series=None)
    >>> for day in range(4):  # 100 rows every day at 10:00
    ...     _ = det.evaluate(Frame("t", day * 86400 + 36000.0, rows=tuple({"x": i} for i in range(100))))
    >>> [(f.labels["problem"], f.evidence["count"], f.evidence["usual"]) for f in
    ...  det.evaluate(Frame("t", 4 * 86400 + 36000.0, rows=({"x": 1},) * 10))]
    [('volume', 10, 100.0)]
    """

    Params: ClassVar[type[BaseModel]] = VolumeParams
    name: ClassVar[str] = "volume"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.buckets_: dict[str, list[float]] = {}  # bucket -> [n, mean, var]

    def _bucket(self, at: float) -> str:
        when = dt.datetime.fromtimestamp(at, dt.UTC)
        if self.params.seasonality == "hour_of_day":
            return f"h{when.hour}"
        if self.params.seasonality == "hour_of_week":
            return f"w{when.weekday()}h{when.hour}"
        return "all"

    def _count(self, frame: Frame) -> float:
        if self.params.count_series:
            for s in frame.series:
                if s.name == self.params.count_series and len(s):
                    return float(s.values[-1])
        return float(len(frame.rows))

    def evaluate(self, frame: Frame) -> list[Finding]:
        p = self.params
        count = self._count(frame)
        bucket = self._bucket(frame.collected_at)
        n, mean, var = self.buckets_.get(bucket, [0.0, 0.0, 0.0])
        out = []
        if n >= p.min_history:
            std = math.sqrt(max(var, 0.0))
            deviation = abs(count - mean)
            if deviation > p.tolerance * mean and deviation > p.z * std and (mean > 0 or count > 0):
                direction = "low" if count < mean else "high"
                out.append(
                    self.finding(
                        frame,
                        "*",
                        "volume",
                        f"{count:.0f} rows this tick, usual for {bucket} is {mean:.0f} +/- {std:.0f} ({direction})",
                        {
                            "count": int(count),
                            "usual": round(mean, 3),
                            "std": round(std, 3),
                            "bucket": bucket,
                            "direction": direction,
                            "rate": min(1.0, deviation / max(mean, 1.0)),
                        },
                    )
                )
        # Exponentially weighted mean/variance: the first ticks average equally, then old ones fade.
        n += 1
        alpha = 1.0 / min(n, p.window)
        delta = count - mean
        mean += alpha * delta
        var = (1 - alpha) * (var + alpha * delta * delta)
        self.buckets_[bucket] = [n, mean, var]
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"buckets": {k: list(v) for k, v in self.buckets_.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        buckets = state.get("buckets")
        self.buckets_ = {}
        if isinstance(buckets, dict):
            for key, value in buckets.items():
                if isinstance(value, list) and len(value) == 3 and all(isinstance(v, int | float) for v in value):
                    self.buckets_[str(key)] = [float(v) for v in value]
