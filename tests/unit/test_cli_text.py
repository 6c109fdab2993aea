"""Text a person reads in the terminal: whole command summaries in ``aiops --help``, names never cut in
tables, long text abbreviated on word boundaries (whole in ``-o wide`` and ``--json``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from aiops.cli import cli
from aiops.store.store import Store
from aiops.text import abbreviate, wrap
from tests.integration.test_store import _incident

SUMMARY = "newest ts is 8s old (limit 4s); the pipeline stopped writing predictions after the last deploy"


@pytest.fixture
def config(tmp_path: Path) -> str:
    db = tmp_path / "aiops.db"
    path = tmp_path / "aiops.yaml"
    path.write_text(f"store: {{url: 'sqlite:///{db}'}}\n")
    store = Store(f"sqlite:///{db}")
    store.migrate()
    row = _incident(store)
    store.update_incident(row.id, {"check_name": "prediction-log-freshness", "summary": SUMMARY}, now=1.0)
    return str(path)


def test_help_lists_every_command_with_its_whole_summary() -> None:
    out = CliRunner().invoke(cli, ["--help"], terminal_width=100).output
    assert "..." not in out.split("Commands:")[1]
    assert "Acknowledge an incident: automation stands back, a person has it." in out
    assert "guard decision and outcome." in out


def test_detect_help_has_an_example_and_names_the_output_path() -> None:
    out = CliRunner().invoke(cli, ["detect", "--help"]).output
    assert "-o, --output PATH" in out and "OUTPUT" not in out.split("Options:")[1]
    assert "Examples:\n    aiops detect latency.csv -o scored.csv" in out


def test_incidents_table_keeps_names_whole_and_abbreviates_text_on_a_word(config: str) -> None:
    out = CliRunner().invoke(cli, ["incidents", "-c", config, "-o", "table"], env={"COLUMNS": "100"}).output
    row = out.splitlines()[1]
    assert "prediction-log-freshness" in row and len(row) <= 100, row
    assert row.endswith("…") and row[:-1].split()[-1] in SUMMARY.split(), row  # a whole word, then the mark
    wide = CliRunner().invoke(cli, ["incidents", "-c", config, "-o", "wide"], env={"COLUMNS": "90"}).output
    assert wide.splitlines()[1].endswith(SUMMARY)
    piped = CliRunner().invoke(cli, ["incidents", "-c", config], env={"COLUMNS": "90"}).output
    assert piped == wide  # into a pipe or a file a script gets every cell whole
    (item,) = json.loads(CliRunner().invoke(cli, ["incidents", "-c", config, "-o", "json"]).output)
    assert item["summary"] == SUMMARY


def test_abbreviate_and_wrap_break_between_words() -> None:
    assert abbreviate("promote if accuracy improves by 0.01", 27) == "promote if accuracy…"
    assert abbreviate("mean_area (distribution moved)", 15) == "mean_area…"
    assert wrap("restart done; recycle-workers done", 20) == ["restart done;", "recycle-workers done"]
