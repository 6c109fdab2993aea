"""Property-based tests (hypothesis): malformed files, payloads, frames and selectors never crash a source or a
detector, and reading a growing file in arbitrary pieces gives the same rows as reading it at once."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiops.plugins import DETECTORS, build
from aiops.sources.http import compile_path, select
from aiops.sources.ingest import parse_alertmanager, parse_ingest
from aiops.sources.table import TableSource
from aiops.store.store import Store
from aiops.types import Frame, json_safe

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@FAST
@given(st.lists(st.binary(max_size=60), min_size=1, max_size=6), st.sampled_from(["csv", "jsonl"]))
def test_table_source_survives_garbage_appended_in_pieces(pieces: list[bytes], fmt: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"log.{fmt}"
        path.write_bytes(b"a,b,ts\n" if fmt == "csv" else b"")
        source = TableSource(path=str(path), timestamp_column="ts", columns={"a": "float"})
        for i, piece in enumerate(pieces):
            with path.open("ab") as f:
                f.write(piece)
            frame = source.collect(float(i), float(i + 1))
            json.dumps(json_safe([dict(r) for r in frame.rows]))
            for problem in frame.problems:
                json.dumps(problem.to_dict())


rows_strategy = st.lists(
    st.tuples(
        st.integers(-1000, 1000),
        st.floats(allow_nan=False, allow_infinity=False, width=32),
        st.floats(0, 2e9, allow_nan=False),
    ),
    min_size=1,
    max_size=30,
)


@FAST
@given(rows_strategy, st.lists(st.integers(0, 2000), max_size=5), st.booleans())
def test_incremental_reads_equal_one_read(rows: list[tuple[int, float, float]], cuts: list[int], jsonl: bool) -> None:
    if jsonl:
        text = "".join(json.dumps({"id": i, "x": x, "ts": t}) + "\n" for i, x, t in rows)
    else:
        text = "id,x,ts\n" + "".join(f"{i},{x!r},{t!r}\n" for i, x, t in rows)
    data = text.encode()
    bounds = sorted({min(c, len(data)) for c in cuts} | {len(data)})
    with tempfile.TemporaryDirectory() as tmp:
        suffix = "jsonl" if jsonl else "csv"
        once, pieces = Path(tmp) / f"once.{suffix}", Path(tmp) / f"pieces.{suffix}"
        once.write_bytes(data)
        expected = [dict(r) for r in TableSource(path=str(once)).collect(None, 1.0).rows]
        pieces.write_bytes(b"")
        source = TableSource(path=str(pieces))
        got: list[dict[str, Any]] = []
        start = 0
        for tick, end in enumerate(bounds):
            with pieces.open("ab") as f:
                f.write(data[start:end])
            start = end
            got.extend(dict(r) for r in source.collect(float(tick), float(tick + 1)).rows)
    assert len(got) == len(expected) == len(rows)
    for a, b in zip(got, expected, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert math.isclose(float(a[key]), float(b[key]), rel_tol=1e-6, abs_tol=1e-30)


@FAST
@given(st.dictionaries(st.sampled_from(["stream", "points", "events", "x"]), json_values, max_size=4))
def test_ingest_parser_accepts_or_says_why(body: dict[str, Any]) -> None:
    try:
        rows = parse_ingest(body, 1.0)
    except ValueError as exc:
        assert str(exc)
        return
    json.dumps(json_safe(rows))


@FAST
@given(
    st.fixed_dictionaries(
        {"version": st.sampled_from(["4", "3", 4]), "alerts": st.lists(json_values, max_size=3)},
        optional={"receiver": json_values},
    )
)
def test_alertmanager_parser_accepts_or_says_why(body: dict[str, Any]) -> None:
    try:
        rows = parse_alertmanager(body, 1.0)
    except ValueError as exc:
        assert str(exc)
        return
    json.dumps(json_safe(rows))


@FAST
@given(st.lists(st.dictionaries(st.sampled_from(["a", "b", "ts", "id"]), json_values, max_size=4), max_size=12))
def test_quality_detectors_never_crash(rows: list[dict[str, Any]]) -> None:
    frame = Frame(source="t", collected_at=1e9, rows=tuple(rows))
    params: dict[str, dict[str, Any]] = {
        "schema": {"columns": {"a": "float", "b": "str", "ts": "timestamp"}},
        "null_rate": {"max_null_rate": 0.1},
        "value_range": {"ranges": {"a": {"min": 0, "max": 1}}},
        "categories": {"allowed": {"b": ["x", 1]}},
        "duplicates": {"key": ["id"]},
        "freshness": {"max_age": 1, "timestamp_column": "ts"},
        "volume": {"min_history": 1},
        "alert": {},
    }
    for name, p in params.items():
        det = build(DETECTORS, name, p)
        for _ in range(2):
            for finding in det.evaluate(frame):
                json.dumps(finding.to_dict())
        json.dumps(det.state_dict())


@FAST
@given(st.text(max_size=20), json_values)
def test_selectors_parse_or_refuse_and_never_crash_on_documents(selector: str, document: Any) -> None:
    try:
        steps = compile_path("$" + selector)
    except ValueError:
        return
    for path, _ in select(document, steps):
        assert path.startswith("$")


def test_push_source_survives_odd_points() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/s.db")
        store.migrate()
        points = [
            {"name": "x", "value": v, "timestamp": t}
            for v, t in [(1, 5), (None, 6), (float("inf"), 7), (2, 5), (3, 4), (4, "2024-01-01T00:00:00")]
        ]
        store.append_events(parse_ingest({"points": points}, 10.0), 10.0)
        source = build("aiops.sources", "push", {"store_url": store.url})
        frame = source.collect(None, 20.0)
        assert {p.labels["problem"] for p in frame.problems} == {"null_value", "duplicate_timestamp"}
        assert list(frame.series[0].timestamps) == [4.0, 5.0, 1704067200.0]
        store.close()
