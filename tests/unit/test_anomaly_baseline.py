"""The ``baseline`` multivariate detector: streaming maths, state, the check adapter and the offline CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from aiops_detectors.anomaly.baseline import BaselineDetector, BaselineParams, BaselineScorer, score_matrix
from click.testing import CliRunner

from aiops.cli import cli
from aiops.types import Frame, Series


def pump_run(rows: int = 900, fault: tuple[int, int] = (600, 800), seed: int = 0) -> np.ndarray:
    """Three channels: noisy flow (drops during the fault), noisy current, a temperature warming all run."""
    rng = np.random.default_rng(seed)
    flow = 30.0 + rng.normal(0, 0.5, rows)
    flow[fault[0] : fault[1]] -= 4.0
    current = 2.0 + rng.normal(0, 0.05, rows)
    temperature = 70.0 + 0.02 * np.arange(rows) + rng.normal(0, 0.01, rows)
    return np.column_stack([flow, current, temperature])


def test_a_fault_alarms_and_a_warming_channel_does_not() -> None:
    values = pump_run()
    params = BaselineParams(train_rows=400, window=30)
    ratios = score_matrix(values, params)
    alarm = ratios >= params.threshold
    assert not alarm[:600].any(), "the temperature's steady warming must not alarm"
    assert alarm[640:800].mean() > 0.95
    assert not alarm[850:].any(), "back to normal once the fault ends"


def test_the_warming_channel_is_judged_by_its_rate() -> None:
    scorer = BaselineScorer(3, BaselineParams(train_rows=400))
    for row in pump_run()[:400]:
        scorer.update(row)
    assert scorer.slow_ is not None and scorer.slow_.tolist() == [False, False, True]


def test_state_round_trip_mid_stream_continues_identically() -> None:
    values = pump_run()
    whole = BaselineScorer(3, BaselineParams(train_rows=400, window=30))
    expected = [whole.update(r) for r in values]
    for cut in (200, 450, 700):  # during training, just after, during the fault
        first = BaselineScorer(3, BaselineParams(train_rows=400, window=30))
        got = [first.update(r) for r in values[:cut]]
        again = BaselineScorer(3, BaselineParams(train_rows=400, window=30))
        again.load_state_dict(json.loads(json.dumps(first.state_dict())))
        got += [again.update(r) for r in values[cut:]]
        assert got == expected


def test_state_saved_with_one_evidence_column_still_loads() -> None:
    """A daemon state written before evidence was kept per channel (one norm, one evidence ring) must
    restart with its baseline rather than fail; the old max-evidence is broadcast to every channel."""
    values = pump_run()
    scorer = BaselineScorer(3, BaselineParams(train_rows=400, window=30))
    for r in values[:450]:
        scorer.update(r)
    state = json.loads(json.dumps(scorer.state_dict()))
    state["norm"] = 2.0
    state["evidence"] = [1.0] * 30
    again = BaselineScorer(3, BaselineParams(train_rows=400, window=30))
    again.load_state_dict(state)
    assert again.norm_.tolist() == [2.0, 2.0, 2.0]
    assert np.isfinite([again.update(r) for r in values[450:]]).all()


def test_missing_and_constant_channels_are_no_evidence() -> None:
    values = pump_run()
    values = np.column_stack([values, np.full(len(values), 5.0)])  # constant while training
    values[650, 0] = np.nan
    values[500, 1] = np.inf
    ratios = score_matrix(values, BaselineParams(train_rows=400, window=30))
    assert np.isfinite(ratios).all()
    values[700:, 3] = 6.0  # a constant channel that later moves has no scale to be judged by
    assert np.isfinite(score_matrix(values, BaselineParams(train_rows=400, window=30))).all()


def test_check_detector_names_the_channel_that_moved() -> None:
    values = pump_run()
    ts = [float(i) for i in range(len(values))]
    names = ["flow", "current", "temperature"]
    det = BaselineDetector(train_rows=400, window=30, group_by="pump")
    findings = []
    for start in range(0, len(values), 100):  # ticks of 100 rows, as a check delivers them
        frame = Frame(
            "t",
            ts[start + 99],
            series=tuple(
                Series(n, ts[start : start + 100], values[start : start + 100, j].tolist(), {"pump": "p1"})
                for j, n in enumerate(names)
            ),
        )
        findings += det.evaluate(frame)
        det.load_state_dict(json.loads(json.dumps(det.state_dict())))  # a restart between ticks changes nothing
    assert findings, "the fault must raise a finding"
    assert all(600 <= f.observed_at < 820 for f in findings)
    assert findings[0].labels == {"pump": "p1"}
    assert findings[0].evidence["channels"][0] == "flow"


def _write_runs(root: Path) -> None:
    for group, seed in (("a", 1), ("b", 2)):
        values = pump_run(seed=seed)
        df = pd.DataFrame(values, columns=["flow", "current", "temperature"])
        df.insert(0, "datetime", pd.date_range("2026-01-01", periods=len(df), freq="s").astype(str))
        df["anomaly"] = 0
        df.loc[600:799, "anomaly"] = 1
        (root / group).mkdir(parents=True)
        df.to_csv(root / group / "0.csv", sep=";", index=False)


def test_cli_scores_a_directory_of_runs(tmp_path: Path) -> None:
    _write_runs(tmp_path / "in")
    result = CliRunner().invoke(
        cli,
        ["detect", "--multivariate", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--train-rows", "400",
         "--exclude", "anomaly", "-q"],
    )
    assert result.exit_code == 0, result.output
    out = pd.read_csv(tmp_path / "out" / "a" / "0.csv")
    assert list(out.columns) == ["datetime", "anomaly_score", "alert"]
    assert len(out) == 900
    truth = np.zeros(900, dtype=bool)
    truth[600:800] = True
    alert = out["alert"].to_numpy().astype(bool)
    assert alert[truth].mean() > 0.8 and not alert[:600].any()
    assert ((out["anomaly_score"] >= 0.5) == alert).all()


def test_cli_refuses_an_exclusion_no_file_has(tmp_path: Path) -> None:
    _write_runs(tmp_path / "in")
    result = CliRunner().invoke(
        cli, ["detect", "--multivariate", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--exclude", "lable"]
    )
    assert result.exit_code != 0
    assert "lable" in str(result.exception)
    assert not (tmp_path / "out").exists(), "nothing is scored with the labels fed in"
