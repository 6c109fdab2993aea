"""Docs that are generated from code must match it."""

from __future__ import annotations

from pathlib import Path

from aiops.config.reference import render

ROOT = Path(__file__).resolve().parents[2]


def test_configuration_reference_is_up_to_date() -> None:
    current = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert current == render(), "regenerate: python -m aiops.config.reference > docs/configuration.md"


def test_reference_shows_durations_as_people_write_them() -> None:
    text = render()
    for line in (
        "| `for` | duration | `0s` |",
        "| `cooldown` | duration | `5m` |",
        "| `settle` | duration | `0s` |",
        "| `window` | duration | `5m` |",
        "| `timeout` | duration | `5m` |",
    ):
        assert line in text, line
    assert "| `cooldown` | float" not in text and "| `settle` | float" not in text


def test_every_plugin_summary_is_a_whole_sentence() -> None:
    text = render()
    summaries = [text.split(f"### `{name}`\n\n", 1)[1].split("\n", 1)[0] for name in ("bocpd", "cusum", "file")]
    for summary in summaries:
        assert summary.endswith((".", ")")), summary
    assert "so a shift in level or in variance is found in a few points" in summaries[0]
