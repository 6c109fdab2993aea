"""Saved backtests: time-ordered names, a round trip through the file, and names that cannot escape."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiops.backtest.records import BacktestResult
from aiops.backtest.saved import listing, load, save
from aiops.errors import AiopsError


def _result(checks: tuple[str, ...] = ("latency",)) -> BacktestResult:
    return BacktestResult(
        config="aiops.yaml", since=0.0, until=7 * 86400.0, checks=checks, ticks=10, points=10, incidents=(),
        cleared_pending=0, messages=(), wall_seconds=0.1,
    )  # fmt: skip


def test_saved_results_round_trip_newest_first(tmp_path: Path) -> None:
    first = save(tmp_path, {"config": _result()}, now=1_000_000.0)
    second = save(tmp_path, {"config": _result(("a/b", "c")), "against": _result()}, now=2_000_000.0)
    assert first.parent == second.parent == tmp_path / "backtests"
    assert "/" not in second.name.removesuffix(".json").split("-", 1)[1]
    assert [s.name for s in listing(tmp_path)] == [second.name, first.name]
    assert listing(tmp_path)[0].configs == ("config", "against")
    assert load(tmp_path, first.name)["config"] == _result()


@pytest.mark.parametrize("name", ["../aiops.db", "/etc/passwd", "x.json/../../y.json", ".hidden.json", "a" * 200])
def test_names_outside_the_folder_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(AiopsError, match="no saved backtest"):
        load(tmp_path, name)


def test_a_stray_file_is_skipped_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "backtests").mkdir()
    (tmp_path / "backtests" / "broken.json").write_text("{")
    assert listing(tmp_path) == []
