"""The built-in sources against real files and real processes."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiops.errors import SourceError
from aiops.plugins import SOURCES, build
from aiops.sources.file import FileSource
from aiops.sources.host import HostSource
from aiops.types import Frame


def by_key(frame: Frame) -> dict[str, list[float]]:
    return {s.key: list(s.values) for s in frame.series}


def problems(frame: Frame) -> dict[str, int]:
    return {f.labels["problem"]: int(f.evidence["count"]) for f in frame.problems}


# ---------------------------------------------------------------------- host


def test_host_metrics_are_sane() -> None:
    source = build(SOURCES, "host", {"disk_paths": ["/", "/definitely/not/here"]})
    frame = source.collect(None, 1000.0)
    frame = source.collect(1000.0, 1001.0)  # second call: CPU percent is a real delta now
    values = by_key(frame)
    assert 0.0 <= values["host_cpu_percent"][0] <= 100.0
    assert 0.0 < values["host_memory_percent"][0] <= 100.0
    assert 0.0 < values['host_disk_percent{path="/"}'][0] <= 100.0
    assert all(s.timestamps == (1001.0,) for s in frame.series)
    assert problems(frame) == {"disk_unavailable": 1}
    assert frame.problems[0].kind == "data_quality"


def test_host_metrics_selection_and_validation() -> None:
    source = HostSource(metrics=["host_memory_percent"])
    assert [s.name for s in source.collect(None, 1.0).series] == ["host_memory_percent"]
    with pytest.raises(ValueError, match="unknown metric"):
        HostSource.Params.model_validate({"metrics": ["cpu"]})
    with pytest.raises(ValueError, match="extra"):
        HostSource.Params.model_validate({"bogus": 1})


def test_host_process_up_then_down(tmp_path: Path) -> None:
    marker = f"aiops-test-{uuid.uuid4().hex}"
    pidfile = tmp_path / "worker.pid"
    source = build(
        SOURCES,
        "host",
        {
            "metrics": ["process_up", "process_count", "process_rss_bytes", "process_cpu_percent"],
            "processes": [
                {"name": "worker", "match": marker},
                {"name": "by_pidfile", "pidfile": str(pidfile), "match": marker},
                {"name": "absent", "match": marker + "-nope"},
            ],
        },
    )
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", marker])
    try:
        pidfile.write_text(f"{proc.pid}\n")
        values = by_key(source.collect(None, 10.0))
        assert values['process_up{process="worker"}'] == [1.0]
        assert values['process_count{process="worker"}'] == [1.0]
        assert values['process_rss_bytes{process="worker"}'][0] > 1_000_000
        assert values['process_cpu_percent{process="worker"}'][0] >= 0.0
        assert values['process_up{process="by_pidfile"}'] == [1.0]
        assert values['process_up{process="absent"}'] == [0.0]
    finally:
        proc.kill()
        proc.wait()
    frame = source.collect(10.0, 20.0)
    values = by_key(frame)
    assert values['process_up{process="worker"}'] == [0.0]
    assert values['process_count{process="worker"}'] == [0.0]
    assert values['process_up{process="by_pidfile"}'] == [0.0]  # stale pid file
    pidfile.write_text("not a pid")
    assert problems(source.collect(20.0, 30.0)) == {"pidfile_invalid": 1}


# ---------------------------------------------------------------------- file


def append(path: Path, text: str | bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(text.encode() if isinstance(text, str) else text)


def test_file_csv_incremental(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text("timestamp,latency,rows,status\n1000,0.5,10,ok\n1001,0.6,11,ok\n")
    source = build(SOURCES, "file", {"path": str(path), "labels": {"pipeline": "etl"}})
    frame = source.collect(None, 2000.0)
    assert by_key(frame) == {'latency{pipeline="etl"}': [0.5, 0.6], 'rows{pipeline="etl"}': [10.0, 11.0]}
    assert frame.series[0].timestamps == (1000.0, 1001.0)
    assert frame.columns == ("timestamp", "latency", "rows", "status")
    assert frame.rows[1] == {"timestamp": 1001.0, "latency": 0.6, "rows": 11.0, "status": "ok"}
    assert frame.problems == ()
    offset = source.state_dict()["offset"]
    assert offset == path.stat().st_size

    assert source.collect(2000.0, 2001.0).empty  # nothing new
    append(path, "1002,0.7,12,ok\n1003,0.8,1")  # second line is still being written
    frame = source.collect(2001.0, 2002.0)
    assert by_key(frame)['latency{pipeline="etl"}'] == [0.7]
    assert source.state_dict()["offset"] == path.stat().st_size - len("1003,0.8,1")
    append(path, "3,ok\n")
    frame = source.collect(2002.0, 2003.0)
    assert by_key(frame)['rows{pipeline="etl"}'] == [13.0]
    assert source.state_dict()["header"] == ["timestamp", "latency", "rows", "status"]
    assert source.state_dict()["last_ts"] == 1003.0


def test_file_jsonl_iso_timestamps_and_explicit_columns(tmp_path: Path) -> None:
    path = tmp_path / "preds.jsonl"
    lines = [
        {"ts": "2023-11-14 22:13:20", "score": 0.9, "n": 3, "model": "a"},
        {"ts": "2023-11-14T22:13:21Z", "score": 0.8, "n": 4, "model": "a"},
        {"ts": "2023-11-14T23:13:22+01:00", "score": "0.7", "n": 5, "model": "a"},
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    source = FileSource(path=str(path), timestamp_column="ts", value_columns=["score"])
    frame = source.collect(None, 0.0)
    (series,) = frame.series
    assert series.name == "score"
    assert list(series.timestamps) == [1700000000.0, 1700000001.0, 1700000002.0]
    assert list(series.values) == [0.9, 0.8, 0.7]
    assert len(frame.rows) == 3


def test_file_since_skips_redelivered_rows_and_watermark_drops_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("timestamp,v\n10,1\n20,2\n30,3\n")
    source = FileSource(path=str(path))
    frame = source.collect(20.0, 40.0)  # no saved state: rows at or before `since` were already seen
    assert by_key(frame) == {"v": [3.0]}
    assert frame.problems == ()
    append(path, "30,9\n30,3\n25,9\n40,4\n")  # a new row in the same second, a repeated row, an old one
    frame = source.collect(40.0, 50.0)
    assert by_key(frame) == {"v": [9.0, 4.0]}
    assert problems(frame) == {"duplicate_row": 1, "out_of_order": 1}
    dup = next(f for f in frame.problems if f.labels["problem"] == "duplicate_row")
    assert dup.detector == "file" and dup.labels["source"] == "file"
    assert dup.evidence["examples"] == ["30,3"]


def test_file_rows_sharing_a_timestamp_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "preds.csv"  # a batch scored in one epoch second: three rows, not duplicates
    path.write_text("ts,id,score\n1700000000,a,0.1\n1700000000,b,0.2\n1700000000,c,0.3\n")
    params: dict[str, Any] = {"path": str(path), "timestamp_column": "ts", "key_columns": ["id"]}
    source = FileSource(**params)
    frame = source.collect(None, 1700000010.0)
    assert len(frame.rows) == 3 and frame.problems == ()
    restarted = FileSource(**params)
    restarted.load_state_dict(source.state_dict())  # the identities of the rows at the watermark survive
    append(path, "1700000000,c,0.35\n1700000000,d,0.4\n")  # c again (by key), d new
    frame = restarted.collect(1700000010.0, 1700000020.0)
    assert [r["id"] for r in frame.rows] == ["d"]
    assert problems(frame) == {"duplicate_row": 1}


def test_file_rotation_and_truncation(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("timestamp,v\n1,1\n2,2\n")
    source = FileSource(path=str(path))
    assert by_key(source.collect(None, 10.0)) == {"v": [1.0, 2.0]}

    rotated = tmp_path / "m.csv.1"
    path.rename(rotated)
    frame = source.collect(10.0, 11.0)  # rotation in progress: the old name is gone
    assert frame.empty and problems(frame) == {"file_missing": 1}

    path.write_text("timestamp,v,extra\n3,3,7\n")  # new file, new inode, new header
    frame = source.collect(11.0, 12.0)
    assert problems(frame) == {"rotated": 1}
    assert by_key(frame) == {"v": [3.0], "extra": [7.0]}
    assert frame.problems[0].summary.endswith("file rotated/truncated, reading it from the start")

    with open(path, "w") as fh:  # truncated in place (copytruncate), same inode
        fh.write("timestamp,v\n4,4\n")
    frame = source.collect(12.0, 13.0)
    assert problems(frame) == {"rotated": 1}
    assert by_key(frame) == {"v": [4.0]}


def test_file_missing_from_the_start_raises(tmp_path: Path) -> None:
    source = FileSource(path=str(tmp_path / "never.csv"))
    with pytest.raises(SourceError, match=r"never\.csv") as info:
        source.collect(None, 1.0)
    assert info.value.recoverable is True


def test_file_state_round_trip_resumes(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("timestamp,v\n1,1\n2,2\n")
    first = FileSource(path=str(path))
    first.collect(None, 10.0)
    state = json.loads(json.dumps(first.state_dict()))  # what the daemon persists
    assert set(state) == {"offset", "inode", "header", "last_ts", "at_last_ts"}
    append(path, "3,3\n")

    resumed = FileSource(path=str(path))
    resumed.load_state_dict(state)
    assert by_key(resumed.collect(10.0, 11.0)) == {"v": [3.0]}

    old_state = {**state, "header": None}  # resumed without a header: it is read from the file's first line
    again = FileSource(path=str(path))
    again.load_state_dict(old_state)
    append(path, "4,4\n")
    assert by_key(again.collect(11.0, 12.0)) == {"v": [3.0, 4.0]}


def test_file_bad_values(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text(
        "\n".join(
            [
                '{"timestamp": 1, "v": 1.0}',
                '{"timestamp": 2, "v": NaN}',
                '{"timestamp": 3, "v": "high"}',
                '{"timestamp": 4, "v": Infinity}',
                "[1, 2]",
                "{broken",
                '{"v": 5}',
                '{"timestamp": "later", "v": 6}',
                '{"timestamp": 9, "v": 9, "w": null}',
            ]
        )
        + "\n"
    )
    frame = FileSource(path=str(path), value_columns=["v", "w"]).collect(None, 100.0)
    assert by_key(frame) == {"v": [1.0, 9.0]}
    assert problems(frame) == {
        "non_finite": 2,
        "non_numeric": 1,
        "not_an_object": 1,
        "unparseable": 1,
        "missing_timestamp": 1,
        "bad_timestamp": 1,
    }
    assert all(f.kind == "data_quality" and f.evidence["count"] >= 1 for f in frame.problems)


def test_file_csv_field_count_and_max_rows(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("timestamp,v\n" + "".join(f"{i},{i}\n" for i in range(1, 11)) + "11,1,extra\n")
    source = FileSource(path=str(path), max_rows_per_tick=4)
    seen: list[float] = []
    ticks = 0
    while ticks < 10:
        frame = source.collect(None, 100.0 + ticks)
        ticks += 1
        seen += by_key(frame).get("v", [])
        if source.state_dict()["offset"] == path.stat().st_size:
            break
    assert seen == [float(i) for i in range(1, 11)]
    assert ticks == 3  # header + 11 lines read 4 at a time
    assert problems(frame) == {"field_count": 1}


def test_file_giant_line_without_newline_does_not_stall(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_bytes(b'{"timestamp": 1, "v": 1}\n' + b"x" * (2 << 20) + b'\n{"timestamp": 2, "v": 2}\n')
    source = FileSource(path=str(path))
    frame = source.collect(None, 10.0)
    assert by_key(frame) == {"v": [1.0, 2.0]}
    assert "line_too_long" in problems(frame)


_line = st.one_of(
    st.binary(max_size=60),
    st.text(max_size=60).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.builds(
        lambda t, v: f"{t},{v}\n".encode(),
        st.one_of(st.integers(-10, 10**12), st.floats(allow_nan=True), st.sampled_from(["", "x", "2024-01-01"])),
        st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5)),
    ),
    st.builds(
        lambda d: (json.dumps(d) + "\n").encode(),
        st.dictionaries(
            st.sampled_from(["timestamp", "v", "w"]),
            st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5)),
        ),
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fmt=st.sampled_from(["csv", "jsonl"]),
    chunks=st.lists(st.lists(_line, max_size=6), min_size=1, max_size=4),
    rotate_at=st.integers(0, 5),
)
def test_file_malformed_input_never_raises(fmt: str, chunks: list[list[bytes]], rotate_at: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"data.{fmt}"
        path.write_bytes(b"timestamp,v,w\n" if fmt == "csv" else b"")
        source = FileSource(path=str(path), max_rows_per_tick=5)
        since: float | None = None
        last_points: dict[str, float] = {}
        for i, chunk in enumerate(chunks):
            if i == rotate_at:
                path.write_bytes(b"")  # truncation
            append(path, b"".join(chunk))
            frame = source.collect(since, 1000.0 + i)
            since = 1000.0 + i
            for s in frame.series:
                ts = list(s.timestamps)
                assert ts == sorted(ts) and len(set(ts)) == len(ts)
                assert all(math.isfinite(v) for v in s.values)
                assert not ts or ts[0] > last_points.get(s.key, -math.inf)
                if ts:
                    last_points[s.key] = ts[-1]
            for f in frame.problems:
                assert f.kind == "data_quality" and f.evidence["count"] >= 1
                assert len(f.evidence["examples"]) <= 3
            json.dumps(source.state_dict())
            assert 0 <= source.state_dict()["offset"] <= os.path.getsize(path)


def test_file_reports_garbage(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_bytes(b'timestamp,v\n1,1\n\x00\xff\xfe garbage "unterminated\n2,2\n')
    frame = FileSource(path=str(path)).collect(None, time.time())
    assert by_key(frame) == {"v": [1.0, 2.0]}
    assert frame.problems and all(f.kind == "data_quality" for f in frame.problems)


def test_file_tsv_and_sniffed_format(tmp_path: Path) -> None:
    tsv = tmp_path / "m.tsv"
    tsv.write_text("timestamp\tv\n1\t1.5\n")
    assert by_key(FileSource(path=str(tsv)).collect(None, 10.0)) == {"v": [1.5]}
    log = tmp_path / "m.log"  # unknown suffix: a first byte of "{" means JSON Lines
    log.write_text('{"timestamp": 1, "v": 2}\n')
    assert by_key(FileSource(path=str(log)).collect(None, 10.0)) == {"v": [2.0]}
