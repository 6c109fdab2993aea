"""Per-process host metrics: restarts and open files of a real child process (what a process-level fault shows)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

from aiops.plugins import SOURCES, build
from aiops.types import Frame

CHILD = "import sys, time; fs = [open(sys.argv[1]) for _ in range(20)]; time.sleep(60)"


def _values(frame: Frame) -> dict[str, float]:
    return {s.key: s.values[-1] for s in frame.series}


def _start(marker: str, path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", CHILD, str(path), marker])


def test_restarts_and_open_files_of_a_pipeline_process(tmp_path: Path) -> None:
    marker = f"aiops-pipeline-{uuid.uuid4().hex}"
    data = tmp_path / "input.txt"
    data.write_text("x")
    source = build(
        SOURCES,
        "host",
        {
            "metrics": ["process_up", "process_restarts", "process_open_files"],
            "processes": [{"name": "etl", "match": marker}],
        },
    )
    proc = _start(marker, data)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # wait until the child opened its 20 files
            values = _values(source.collect(None, 1.0))
            if values['process_open_files{process="etl"}'] >= 20:
                break
            time.sleep(0.05)
        assert values['process_up{process="etl"}'] == 1.0
        assert values['process_restarts{process="etl"}'] == 0.0  # the first sight is not a restart
        assert values['process_open_files{process="etl"}'] >= 20
        assert _values(source.collect(1.0, 2.0))['process_restarts{process="etl"}'] == 0.0
        proc.kill()
        proc.wait()
        assert _values(source.collect(2.0, 3.0))['process_up{process="etl"}'] == 0.0
        proc = _start(marker, data)  # the supervisor restarted it
        values = _values(source.collect(3.0, 4.0))
        assert values['process_up{process="etl"}'] == 1.0
        assert values['process_restarts{process="etl"}'] == 1.0
        assert _values(source.collect(4.0, 5.0))['process_restarts{process="etl"}'] == 0.0
    finally:
        proc.kill()
        proc.wait()
