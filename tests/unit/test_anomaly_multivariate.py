"""The multivariate detector: a correlated failure across a service's metrics is one finding."""

from __future__ import annotations

import json
import math

import numpy as np

from aiops import plugins
from aiops.types import Frame, Series

PARAMS = {"group_by": "service", "memory": 100, "history": 300, "learn": 50, "rest": 20, "cooldown": 50}


def frame(start: int, stop: int, jump_at: int, services: tuple[str, ...] = ("api", "db")) -> Frame:
    rng = np.random.default_rng(0)
    ts = [60.0 * i for i in range(start, stop)]
    out = []
    for svc in services:
        for name, base, jump in (("latency", 10.0, 9.0), ("errors", 1.0, 6.0), ("qps", 50.0, 0.0)):
            vals = [
                base + math.sin(i / 9) + 0.05 * rng.normal() + (jump if svc == "api" and i >= jump_at else 0.0)
                for i in range(start, stop)
            ]
            out.append(Series(name, ts, vals, {"service": svc}))
    return Frame("test", ts[-1], series=tuple(out))


def test_correlated_failure_is_one_finding_per_service() -> None:
    det = plugins.load(plugins.DETECTORS, "multivariate")(**PARAMS)
    assert det.evaluate(frame(0, 600, 10_000)) == []
    findings = det.evaluate(frame(600, 620, 605))
    assert [f.labels for f in findings] == [{"service": "api"}]
    assert set(findings[0].evidence["metrics"]) >= {"latency", "errors"}
    assert "qps" not in findings[0].evidence["metrics"]
    json.dumps(findings[0].to_dict(), allow_nan=False)


def test_state_round_trip_gives_identical_findings() -> None:
    cls = plugins.load(plugins.DETECTORS, "multivariate")
    a, b = cls(**PARAMS), cls(**PARAMS)
    a.evaluate(frame(0, 600, 10_000))
    b.load_state_dict(json.loads(json.dumps(a.state_dict(), allow_nan=False)))
    fa, fb = a.evaluate(frame(600, 620, 605)), b.evaluate(frame(600, 620, 605))
    assert [f.to_dict() for f in fa] == [f.to_dict() for f in fb]


def test_redelivered_points_and_nan_are_skipped() -> None:
    det = plugins.load(plugins.DETECTORS, "multivariate")(**PARAMS)
    det.evaluate(frame(0, 300, 10_000))
    again = frame(250, 320, 10_000)
    broken = tuple(Series(s.name, s.timestamps, [math.nan, *s.values[1:]], s.labels) for s in again.series)
    assert det.evaluate(Frame("test", again.collected_at, series=broken)) == []
    assert det.state_dict()["group_ts"]["api"] == 60.0 * 319


def test_single_series_falls_back_to_default_pipeline() -> None:
    det = plugins.load(plugins.DETECTORS, "multivariate")()
    scorer = det.new_scorer()
    assert 0.0 <= scorer.update(0.0, 1.0) <= 1.0


def test_joint_component_finds_moderate_shifts_of_every_metric_at_once() -> None:
    from aiops_detectors.anomaly.multivariate import MultivariateParams, MultivariateScorer

    small = {"memory": 300, "history": 1500, "value_memory": 1000}
    found = {False: 0, True: 0}
    for seed in range(3):
        noise = np.random.default_rng(seed).normal(0, 1, (3, 3000))
        noise[:, 2600:2640] += 2.0  # two sd on each metric: each alone stays under the alert level
        for joint in (False, True):
            scorer = MultivariateScorer(MultivariateParams(joint=joint, **small))
            scores = np.array(
                [scorer.update(60.0 * i, dict(zip("abc", noise[:, i].tolist(), strict=True))) for i in range(3000)]
            )
            assert scores[1000:2600].max() < 0.5  # quiet before: correlation of noise is no alarm
            found[joint] += bool(scores[2600:2660].max() >= 0.6)
    assert found[True] > found[False]
    evidence = scorer.expected()
    assert "joint_surprise" in evidence
