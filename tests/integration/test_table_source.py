"""The table source on real files (CSV, JSONL, Parquet) and real databases (SQLite, PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from aiops.errors import SourceError
from aiops.plugins import SOURCES, build
from aiops.types import Frame


def _problems(frame: Frame) -> dict[str, int]:
    return {p.labels["problem"]: p.evidence["count"] for p in frame.problems}


def _read(frame: Frame) -> float:
    return float(frame.series[0].values[0])


# ---------------------------------------------------------------------- files


def test_growing_csv_is_read_incrementally_with_partial_lines_and_rotation(tmp_path: Path) -> None:
    log = tmp_path / "pred.csv"
    log.write_text("ts,model,score\n1,a,0.5\n2,b,0.7\n3,a,0.9\n4,b")  # last line still being written
    source = build(SOURCES, "table", {"path": str(log), "timestamp_column": "ts"})
    frame = source.collect(None, 100.0)
    assert [r["ts"] for r in frame.rows] == [1.0, 2.0, 3.0]
    assert frame.columns == ("ts", "model", "score") and _read(frame) == 3
    with log.open("a") as f:
        f.write(",0.1\n5,a,oops,extra\n6,a,0.3\n")
    frame = source.collect(100.0, 101.0)
    assert [(r["ts"], r["model"]) for r in frame.rows] == [(4.0, "b"), (6.0, "a")]
    assert _problems(frame) == {"field_count": 1}
    assert source.collect(101.0, 102.0).rows == ()
    # A restart with the saved state reads nothing twice.
    again = build(SOURCES, "table", {"path": str(log), "timestamp_column": "ts"})
    again.load_state_dict(json.loads(json.dumps(source.state_dict())))
    assert again.collect(102.0, 103.0).rows == ()
    # Rotation: a new, shorter file under the same name is read from its start.
    os.rename(log, tmp_path / "pred.csv.1")
    log.write_text("ts,model,score\n7,c,0.2\n")
    frame = again.collect(103.0, 104.0)
    assert [r["model"] for r in frame.rows] == ["c"] and "rotated" in _problems(frame)


def test_window_keeps_the_newest_rows_but_counts_all(tmp_path: Path) -> None:
    log = tmp_path / "big.csv"
    log.write_text("id,v\n" + "".join(f"{i},{i * 0.5}\n" for i in range(1000)))
    frame = build(SOURCES, "table", {"path": str(log), "max_rows": 10}).collect(None, 1.0)
    assert [r["id"] for r in frame.rows] == list(range(990, 1000)) and _read(frame) == 1000


def test_max_age_bounds_the_first_read(tmp_path: Path) -> None:
    log = tmp_path / "t.jsonl"
    log.write_text("".join(json.dumps({"time": f"2024-01-01T00:{m:02d}:00Z", "m": m}) + "\n" for m in range(60)))
    until = dt.datetime(2024, 1, 1, 1, 0, tzinfo=dt.UTC).timestamp()
    source = build(SOURCES, "table", {"path": str(log), "timestamp_column": "time", "max_age": 300})
    frame = source.collect(None, until)
    assert [r["m"] for r in frame.rows] == [56, 57, 58, 59]
    assert frame.rows[0]["time"] == until - 240


def test_jsonl_with_garbage_lines_and_declared_schema(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    log.write_text('{"id": 1, "score": 0.5}\nnot json\n[1, 2]\n{"id": "x", "score": "high"}\n{"id": 3, "score": 1}\n')
    source = build(SOURCES, "table", {"path": str(log), "columns": {"id": "int", "score": "float"}})
    frame = source.collect(None, 1.0)
    assert [(r["id"], r["score"]) for r in frame.rows] == [(1, 0.5), (None, None), (3, 1.0)]
    assert _problems(frame) == {"unparseable": 1, "not_an_object": 1, "wrong_type:id": 1, "wrong_type:score": 1}


def test_directory_of_parquet_and_csv_files(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    pq.write_table(pa.table({"id": [1, 2], "label": ["x", "y"]}), folder / "part-0.parquet")
    source = build(SOURCES, "table", {"path": str(folder)})
    assert [r["id"] for r in source.collect(None, 1.0).rows] == [1, 2]
    assert source.collect(1.0, 2.0).rows == ()  # unchanged file: not read again
    pq.write_table(pa.table({"id": [3], "label": ["z"]}), folder / "part-1.parquet")
    (folder / "broken.parquet").write_bytes(b"PAR1 truncated")
    frame = source.collect(2.0, 3.0)
    assert [r["id"] for r in frame.rows] == [3] and _problems(frame) == {"unreadable_file": 1}
    glob_source = build(SOURCES, "table", {"path": str(folder / "*.parquet")})
    assert sorted(r["id"] for r in glob_source.collect(None, 1.0).rows) == [1, 2, 3]


def test_inferred_schema_reports_a_type_change(tmp_path: Path) -> None:
    log = tmp_path / "m.jsonl"
    log.write_text('{"id": 1, "model": "a", "ok": true}\n')
    source = build(SOURCES, "table", {"path": str(log)})
    assert source.collect(None, 1.0).problems == ()
    with log.open("a") as f:
        f.write('{"id": "2", "model": "a", "ok": true}\n{"id": 3, "model": 7, "ok": true}\n')
    assert _problems(source.collect(1.0, 2.0)) == {"type_changed:id": 1, "type_changed:model": 1}
    assert source.state_dict()["schema"] == {"id": "number", "model": "str", "ok": "bool"}


def test_missing_file_is_a_recoverable_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as info:
        build(SOURCES, "table", {"path": str(tmp_path / "nope.csv")}).collect(None, 1.0)
    assert info.value.recoverable


def test_parameters_are_validated() -> None:
    with pytest.raises(ValueError, match="either path"):
        build(SOURCES, "table", {})
    with pytest.raises(ValueError, match="exactly one of table or query"):
        build(SOURCES, "table", {"url": "sqlite://"})


# ---------------------------------------------------------------------- SQL


def _sql_roundtrip(url: str, table: str) -> None:
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    preds = sa.Table(
        table,
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True)),
        sa.Column("model", sa.String(20)),
        sa.Column("score", sa.Float),
    )
    meta.create_all(engine)
    t0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

    def insert(ids: range) -> None:
        with engine.begin() as conn:
            conn.execute(
                sa.insert(preds),
                [{"id": i, "at": t0 + dt.timedelta(seconds=i), "model": "m", "score": i / 10} for i in ids],
            )

    insert(range(1, 6))
    by_id = build(SOURCES, "table", {"url": url, "table": table, "id_column": "id", "timestamp_column": "at"})
    frame = by_id.collect(None, 1.0)
    assert [r["id"] for r in frame.rows] == [1, 2, 3, 4, 5] and _read(frame) == 5
    assert frame.rows[0]["at"] == t0.timestamp() + 1
    assert by_id.collect(1.0, 2.0).rows == ()
    insert(range(6, 26))
    small = build(SOURCES, "table", {"url": url, "table": table, "id_column": "id", "max_rows": 4})
    small.load_state_dict(json.loads(json.dumps(by_id.state_dict())))
    frame = small.collect(2.0, 3.0)
    assert [r["id"] for r in frame.rows] == [22, 23, 24, 25] and _read(frame) == 20

    by_time = build(
        SOURCES,
        "table",
        {"url": url, "query": f"SELECT id, at, score FROM {table} WHERE score > 0.2", "timestamp_column": "at"},
    )
    frame = by_time.collect(None, 1.0)
    assert [r["id"] for r in frame.rows] == list(range(3, 26))
    insert(range(26, 28))
    assert [r["id"] for r in by_time.collect(1.0, 2.0).rows] == [26, 27]

    windowed = build(SOURCES, "table", {"url": url, "table": table, "timestamp_column": "at", "max_age": 3})
    assert [r["id"] for r in windowed.collect(None, (t0 + dt.timedelta(seconds=27)).timestamp()).rows] == [25, 26, 27]
    windowed_query = build(
        SOURCES, "table", {"url": url, "query": f"SELECT id, at FROM {table}", "timestamp_column": "at", "max_age": 3}
    )
    frame = windowed_query.collect(None, (t0 + dt.timedelta(seconds=27)).timestamp())
    assert [r["id"] for r in frame.rows] == [25, 26, 27] and _read(frame) == 3

    with pytest.raises(SourceError) as info:
        build(SOURCES, "table", {"url": url, "table": "no_such_table_here"}).collect(None, 1.0)
    assert not info.value.recoverable
    with pytest.raises(SourceError) as info:
        build(SOURCES, "table", {"url": url, "query": "SELEC nonsense"}).collect(None, 1.0)
    assert not info.value.recoverable
    engine.dispose()


def test_sqlite_table_and_query(tmp_path: Path) -> None:
    _sql_roundtrip(f"sqlite:///{tmp_path}/preds.db", "predictions")


@pytest.mark.postgres
def test_postgres_table_and_query(postgres_url: str) -> None:
    _sql_roundtrip(postgres_url, f"preds_{uuid.uuid4().hex[:8]}")


def test_unreachable_database_is_recoverable() -> None:
    source = build(SOURCES, "table", {"url": "postgresql://u@127.0.0.1:1/db", "table": "t"})
    with pytest.raises(SourceError) as info:
        source.collect(None, 1.0)
    assert info.value.recoverable
