"""Small parts of ``aiops demo`` that a person notices: a second run keeps the first one's report when the
new report goes elsewhere."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aiops.demo.scenario import MARKER, DemoRun


@pytest.fixture
def run(tmp_path: Path) -> Iterator[DemoRun]:
    demo = DemoRun(tmp_path / "demo-run", speed=10)
    yield demo
    demo.receiver.server.server_close()


def _previous_run(root: Path) -> None:
    (root / "registry").mkdir(parents=True)
    (root / MARKER).write_text("created by `aiops demo`")
    (root / "report.html").write_text("<html>first run</html>")
    (root / "aiops.db").write_text("old state")


def test_a_second_run_keeps_the_previous_report_when_reporting_elsewhere(run: DemoRun, tmp_path: Path) -> None:
    root = run.layout.root
    _previous_run(root)
    run.report_path = tmp_path / "second.html"
    run.prepare_directory()
    assert (root / "report.html").read_text() == "<html>first run</html>"
    assert not (root / "aiops.db").exists() and not (root / "registry").exists()  # the old run's state is gone
    assert (root / MARKER).exists()


def test_a_second_run_replaces_its_own_report(run: DemoRun) -> None:
    _previous_run(run.layout.root)
    run.prepare_directory()  # the report goes to its default place: the new one replaces the old
    assert not (run.layout.root / "report.html").exists()
