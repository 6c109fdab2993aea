"""Each data-quality detector on a real bundled dataset (scikit-learn's wine, breast cancer, diabetes tables)
with injected defects: it finds exactly the injected ones, and nothing on the clean table."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

from aiops.plugins import DETECTORS, build
from aiops.types import Finding, Frame, Series


def _frame(df: pd.DataFrame, at: float = 0.0) -> Frame:
    rows = tuple(dict(r) for r in df.to_dict("records"))
    return Frame(source="table", collected_at=at, rows=rows, columns=tuple(df.columns))


def _keys(findings: list[Finding]) -> set[tuple[str, str]]:
    return {(f.labels["column"], f.labels["problem"]) for f in findings}


def _wine() -> pd.DataFrame:
    return load_wine(as_frame=True).frame


def _cancer() -> pd.DataFrame:
    df = load_breast_cancer(as_frame=True).frame
    return df.assign(patient_id=[f"P{i:04d}" for i in range(len(df))])


def _diabetes() -> pd.DataFrame:
    return load_diabetes(as_frame=True).frame


def test_schema_on_wine() -> None:
    clean = _wine()
    schema = {c: ("int" if c == "target" else "float") for c in clean.columns}
    det = build(DETECTORS, "schema", {"columns": schema})
    assert det.evaluate(_frame(clean)) == []
    broken = clean.drop(columns=["alcohol"]).assign(debug=1)
    broken["magnesium"] = broken["magnesium"].astype(object)
    broken.loc[[3, 50, 120], "magnesium"] = "n/a"
    findings = det.evaluate(_frame(broken))
    assert _keys(findings) == {("alcohol", "missing_column"), ("debug", "extra_column"), ("magnesium", "wrong_type")}
    wrong = next(f for f in findings if f.labels["problem"] == "wrong_type")
    assert wrong.evidence["count"] == 3 and wrong.evidence["found"] == {"str": 3}
    assert [e["magnesium"] for e in wrong.evidence["examples"]] == ["n/a"] * 3


def test_null_rate_on_breast_cancer_with_redaction() -> None:
    clean = _cancer()
    det = build(DETECTORS, "null_rate", {"max_null_rate": 0.01, "sensitive_columns": ["patient_id"]})
    assert det.evaluate(_frame(clean)) == []
    broken = clean.copy()
    rng = np.random.default_rng(0)
    idx = rng.choice(len(broken), size=57, replace=False)  # 10 %
    broken.loc[idx, "mean radius"] = np.nan
    broken["worst area"] = broken["worst area"].astype(object)
    broken.loc[[1, 2, 3, 4, 5, 6, 7], "worst area"] = None  # 1.2 %
    broken.loc[[9], "mean texture"] = np.nan  # 0.2 %: tolerated
    findings = det.evaluate(_frame(broken))
    assert _keys(findings) == {("mean radius", "null_rate"), ("worst area", "null_rate")}
    radius = next(f for f in findings if f.labels["column"] == "mean radius")
    assert radius.evidence["count"] == 57 and radius.evidence["rate"] == pytest.approx(57 / 569)
    assert all(
        e["patient_id"] == "***" and math.isnan(float(e["mean radius"] or "nan")) for e in radius.evidence["examples"]
    )
    json.dumps(radius.to_dict())


def test_value_range_on_diabetes() -> None:
    clean = _diabetes()
    ranges = {c: {"min": float(clean[c].min()), "max": float(clean[c].max())} for c in clean.columns}
    det = build(DETECTORS, "value_range", {"ranges": ranges})
    assert det.evaluate(_frame(clean)) == []
    broken = clean.copy()
    broken.loc[[0, 10, 20, 30], "bmi"] = 25.0  # unscaled BMI where a standardised value is expected
    broken.loc[[5, 6], "s5"] = -1.0
    broken.loc[[7], "age"] = np.nan  # a null is the null-rate detector's business
    findings = det.evaluate(_frame(broken))
    assert _keys(findings) == {("bmi", "out_of_range"), ("s5", "out_of_range")}
    counts = {f.labels["column"]: f.evidence["count"] for f in findings}
    assert counts == {"bmi": 4, "s5": 2}
    assert next(f for f in findings if f.labels["column"] == "bmi").evidence["max_seen"] == 25.0


def test_categories_on_wine_target() -> None:
    clean = _wine()
    det = build(DETECTORS, "categories", {"allowed": {"target": [0, 1, 2]}})
    assert det.evaluate(_frame(clean)) == []
    broken = clean.copy()
    broken["target"] = broken["target"].astype(object)
    broken.loc[[0, 1, 2], "target"] = 7
    broken.loc[[3], "target"] = "class_1"
    findings = det.evaluate(_frame(broken))
    assert _keys(findings) == {("target", "unexpected_category")}
    assert findings[0].evidence["unexpected"] == {"7": 3, "class_1": 1}


def test_duplicate_keys_on_breast_cancer_within_and_across_ticks() -> None:
    clean = _cancer()
    det = build(DETECTORS, "duplicates", {"key": ["patient_id"], "sensitive_columns": ["patient_id"]})
    first, second = clean.iloc[:300], clean.iloc[300:]
    assert det.evaluate(_frame(first)) == []
    resent = pd.concat([second, clean.iloc[[10, 20, 30]], second.iloc[[0, 1]]])  # 3 re-sent + 2 doubled
    again = build(DETECTORS, "duplicates", {"key": ["patient_id"], "sensitive_columns": ["patient_id"]})
    again.load_state_dict(json.loads(json.dumps(det.state_dict())))
    findings = again.evaluate(_frame(resent))
    assert _keys(findings) == {("patient_id", "duplicate_key")}
    assert findings[0].evidence["count"] == 5 and findings[0].evidence["keys"] == {"***": 5}


def test_freshness_on_wine_timestamps() -> None:
    df = _wine().assign(ts=lambda d: 1_700_000_000.0 + 60.0 * np.arange(len(d)))
    det = build(DETECTORS, "freshness", {"max_age": "30m", "timestamp_column": "ts"})
    newest = float(df["ts"].max())
    assert det.evaluate(_frame(df, at=newest + 600)) == []
    state = json.loads(json.dumps(det.state_dict()))
    later = build(DETECTORS, "freshness", {"max_age": "30m", "timestamp_column": "ts"})
    later.load_state_dict(state)
    # The pipeline stopped writing: a tick with no rows, 2 hours after the newest one.
    empty = Frame(source="table", collected_at=newest + 7200, series=(Series("table_rows_read", (0.0,), (0.0,)),))
    findings = later.evaluate(empty)
    assert _keys(findings) == {("ts", "stale")} and findings[0].evidence["age_seconds"] == 7200.0
    job = build(DETECTORS, "freshness", {"max_age": 3600, "series": "last_success"})
    ok = Frame(source="http", collected_at=10_000.0, series=(Series("last_success", (10_000.0,), (9_000.0,)),))
    assert job.evaluate(ok) == []
    assert _keys(job.evaluate(Frame(source="http", collected_at=20_000.0))) == {("last_success", "stale")}


def test_volume_learns_the_usual_for_each_hour() -> None:
    """A week of hourly ticks with a daily cycle (day 300 rows, night 30, from diabetes' 442 rows): only the
    injected outage (day hour at 20 rows) and burst (night hour at 400 rows) are flagged, not the nights."""
    data = _diabetes()
    rng = np.random.default_rng(1)
    det = build(DETECTORS, "volume", {"count_series": None, "min_history": 3})
    flagged: list[tuple[int, str]] = []
    for tick in range(24 * 8):
        hour = tick % 24
        usual = 300 if 8 <= hour < 20 else 30
        n = int(rng.normal(usual, usual * 0.05))
        if tick == 24 * 6 + 10:
            n = 20
        if tick == 24 * 7 + 2:
            n = 400
        frame = _frame(data.sample(n=min(n, len(data)), random_state=tick, replace=False), at=tick * 3600.0)
        findings = det.evaluate(frame)
        flagged += [(tick, f.evidence["direction"]) for f in findings]
        assert all(f.labels == {"column": "*", "problem": "volume"} for f in findings)
    assert flagged == [(24 * 6 + 10, "low"), (24 * 7 + 2, "high")]
    json.dumps(det.state_dict())


def test_quality_detectors_never_crash_on_odd_rows() -> None:
    rows: tuple[dict[str, Any], ...] = (
        {},
        {"a": float("inf"), "b": [1, 2], "c": {"x": 1}, "ts": "not a time"},
        {"a": True, "b": None, "ts": float("nan")},
    )
    frame = Frame(source="t", collected_at=1.0, rows=rows, columns=("a", "b", "c", "ts"))
    params: dict[str, dict[str, Any]] = {
        "schema": {"columns": {"a": "float", "b": "str", "ts": "timestamp"}},
        "null_rate": {},
        "value_range": {"ranges": {"a": {"min": 0, "max": 1}}},
        "categories": {"allowed": {"b": ["x"]}},
        "duplicates": {"key": ["b", "c"]},
        "freshness": {"max_age": 1, "timestamp_column": "ts"},
        "volume": {},
    }
    for name, p in params.items():
        for f in build(DETECTORS, name, p).evaluate(frame):
            json.dumps(f.to_dict())


def test_wine_csv_through_the_table_source(tmp_path: Any) -> None:
    """The whole path: a CSV written by pandas, read by the table source, judged by the detectors."""
    from aiops.plugins import SOURCES

    clean = _wine()
    ranges = {c: {"min": float(clean[c].min()), "max": float(clean[c].max())} for c in clean.columns}
    schema = {c: ("int" if c == "target" else "float") for c in clean.columns}
    broken = clean.copy()
    broken.loc[[4, 8], "color_intensity"] = np.nan
    broken.loc[[15], "hue"] = 99.0
    path = tmp_path / "wine.csv"
    broken.to_csv(path, index=False)
    frame = build(SOURCES, "table", {"path": str(path)}).collect(None, 1.0)
    assert len(frame.rows) == 178 and frame.problems == ()
    findings = [
        f
        for name, params in (
            ("schema", {"columns": schema}),
            ("null_rate", {}),
            ("value_range", {"ranges": ranges}),
            ("categories", {"allowed": {"target": [0, 1, 2]}}),
        )
        for f in build(DETECTORS, name, params).evaluate(frame)
    ]
    assert _keys(findings) == {("color_intensity", "null_rate"), ("hue", "out_of_range")}
