"""The demo report's chart labels, laid out by headless Chromium: markers seconds apart never print over
each other, and none runs past its chart."""

from __future__ import annotations

from pathlib import Path

from aiops.svgplot import line_chart
from tests.e2e.browser import label_layout


def test_crowded_marker_labels_do_not_overlap_in_chromium(tmp_path: Path) -> None:
    markers = [
        (10.0, "bad-deploy: fault", "#b3261e"),
        (40.0, "#3 detected", "#e37400"),
        (41.0, "restart done", "#1a73e8"),
        (42.0, "recycle-workers done", "#1a73e8"),
        (43.0, "verified: healed", "#137333"),
        (44.0, "#4 detected", "#e37400"),
        (198.0, "escalated", "#7b1fa2"),
        (200.0, "flapping: fault", "#b3261e"),
    ]
    chart = line_chart([("rows", [0.0, 100.0, 200.0], [1.0, 2.0, 1.5], "#5f6b7a")], markers, ylabel="rows/s")
    page = tmp_path / "chart.html"
    page.write_text(f"<!doctype html><html><body>{chart}</body></html>", encoding="utf-8")
    layout = label_layout(page)
    assert layout["labels"] == len(markers)
    assert layout["overlaps"] == [], layout["overlaps"]
    assert layout["outside"] == [], layout["outside"]
