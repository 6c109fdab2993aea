"""``aiops drift``: exit status like diff (0 same, 1 drift, 2 error), JSON shape, plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from aiops.commands.drift import drift


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("drift")
    rng = np.random.default_rng(0)

    def table(n: int, shift: float = 0.0) -> pd.DataFrame:
        return pd.DataFrame({"x": rng.normal(shift, 1.0, n), "y": rng.normal(size=n), "c": rng.choice(["p", "q"], n)})

    table(2000).to_csv(d / "ref.csv", index=False)
    table(1000).to_csv(d / "clean.csv", index=False)
    stream = pd.concat([table(500), table(500, shift=1.0)], ignore_index=True)
    stream.to_json(d / "stream.jsonl", orient="records", lines=True)
    table(600, shift=1.0).to_parquet(d / "moved.parquet")
    (d / "broken.csv").write_text('x,y\n1,"2\n')
    return {
        k: str(d / f)
        for k, f in [
            ("ref", "ref.csv"),
            ("clean", "clean.csv"),
            ("stream", "stream.jsonl"),
            ("moved", "moved.parquet"),
            ("broken", "broken.csv"),
            ("dir", ""),
        ]
    }


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(drift, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_no_drift_exits_0_with_a_readable_table(tables: dict[str, str]) -> None:
    code, out, _ = run("--reference", tables["ref"], "--current", tables["clean"])
    assert code == 0
    assert "no drift" in out and "column" in out and "x" in out


def test_drift_exits_1_and_names_the_column(tables: dict[str, str]) -> None:
    code, out, _ = run("--reference", tables["ref"], "--current", tables["moved"])
    assert code == 1
    assert "DRIFT" in out and "x" in out


def test_windows_json_shape(tables: dict[str, str]) -> None:
    code, out, _ = run("--reference", tables["ref"], "--current", tables["stream"], "--window", "500", "--json")
    assert code == 1
    doc = json.loads(out)
    assert [(w["start"], w["end"], w["drift"]) for w in doc["windows"]] == [(0, 500, False), (500, 1000, True)]
    assert set(doc["windows"][1]["columns"]) == {"x", "y", "c"}
    assert doc["windows"][1]["columns"]["x"]["drift"] is True


@pytest.mark.parametrize("name", ["ks", "psi", "mmd"])
def test_other_detectors_and_params(tables: dict[str, str], name: str) -> None:
    code, out, _ = run(
        "--reference", tables["ref"], "--current", tables["moved"], "--detector", name, "--json", "--param", "seed=3"
    )
    assert code == 1
    assert json.loads(out)["detector"] == name


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--current", "{clean}", "--reference", "/nonexistent.csv"], "no such file"),
        (["--current", "{broken}", "--reference", "{ref}"], "cannot read"),
        (["--current", "{clean}", "--reference", "{ref}", "--detector", "nope"], "unknown detector 'nope'"),
        (["--current", "{clean}", "--reference", "{ref}", "--param", "alpha=7"], "alpha"),
        (["--current", "{clean}", "--reference", "{ref}", "--param", "bogus=1"], "bogus"),
        (["--current", "{clean}", "--reference", "{ref}", "--param", "novalue"], "KEY=VALUE"),
        (["--current", "{clean}", "--reference", "{ref}", "--detector", "threshold"], "not a drift detector"),
    ],
)
def test_errors_exit_2_with_one_line(tables: dict[str, str], args: list[str], message: str) -> None:
    code, _, err = run(*[a.format(**tables) for a in args])
    assert code == 2
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_usage_error_exits_2(tables: dict[str, str]) -> None:
    code, _, _ = run("--current", tables["clean"])
    assert code == 2


def test_plot_writes_one_png_per_drifted_column(tables: dict[str, str], tmp_path: Path) -> None:
    code, out, _ = run("--reference", tables["ref"], "--current", tables["moved"], "--plot", str(tmp_path / "p"))
    assert code == 1
    assert (tmp_path / "p" / "x.png").exists()
    assert "plot:" in out


def test_a_small_persistent_shift_is_reported_with_its_first_window(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)

    def table(n: int, rate: float) -> pd.DataFrame:
        return pd.DataFrame({"x": rng.normal(size=n), "flag": (rng.random(n) < rate).astype(int)})

    table(2000, 0.3).to_csv(tmp_path / "ref.csv", index=False)
    pd.concat([table(3000, 0.3), table(3000, 0.37)]).to_csv(tmp_path / "cur.csv", index=False)
    args = ("--reference", str(tmp_path / "ref.csv"), "--current", str(tmp_path / "cur.csv"), "--window", "500")
    code, out, _ = run(*args, "--json")
    assert code == 1
    seq = json.loads(out)["sequential"]
    assert seq["first_alarm_window"] >= 6 and list(seq["alarms"]) == ["flag"]
    low, high = seq["alarms"]["flag"]["ci95"]
    assert low < 0.07 < high
    code, text, _ = run(*args)
    assert "persistent shift (evidence across windows) first flagged in window" in text


def test_the_collector_is_left_as_it_was(tables: dict[str, str]) -> None:
    """The command pauses the garbage collector while it imports and freezes what it imported; an embedding
    caller gets it back on and unfrozen, on success and on error alike."""
    import gc

    frozen = gc.get_freeze_count()  # what the embedding process froze itself (another test, say) stays frozen
    for args in (["--current", tables["clean"]], ["--current", tables["broken"]]):
        code, _, _ = run("--reference", tables["ref"], *args)
        assert code in (0, 2)
        assert gc.isenabled() and gc.get_freeze_count() == frozen
