"""``aiops tune``: search a check's thresholds and durations for the config that keeps the useful incidents
and drops the noise, with the backtest as the judge of every candidate.

The history is read once; each candidate is the original config with one knob changed (a detector's
``threshold``/``above``/``below``/``z_threshold``, or the policy's ``for``), replayed through
the real engine and scored against the labels. Coordinate descent, two rounds: a knob moves only when the
candidate loses no more useful windows, pages fewer noise windows, or the same with fewer incidents; ties keep
the value nearest the original. The result is a proposal file: the running config is never touched.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from aiops.backtest.labels import Label, score
from aiops.backtest.records import BacktestResult
from aiops.backtest.simulate import simulate
from aiops.config.loader import Config, parse_config
from aiops.durations import parse_duration
from aiops.errors import AiopsError
from aiops.replay import Replay

_SCALES = (0.5, 0.75, 0.9, 1.1, 1.25, 1.5, 2.0, 3.0)
_SCORE_THRESHOLDS = (0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
_TICK_MULTIPLES = (0, 1, 2, 3, 5, 10, 20)
SCALED_PARAMS = ("above", "below", "z_threshold", "max_null_rate", "max_violation_rate", "max_duplicate_rate")


@dataclass(frozen=True)
class Knob:
    """One tunable value: where it lives in the check's YAML block, and the values worth trying."""

    path: tuple[str | int, ...]
    original: float
    candidates: tuple[float, ...]

    @property
    def name(self) -> str:
        return ".".join(str(p) for p in self.path)


@dataclass(frozen=True)
class Objective:
    useful_lost: int
    noise_paged: int
    incidents: int
    changed: int

    def key(self) -> tuple[int, int, int, int]:
        return (self.useful_lost, self.noise_paged, self.incidents, self.changed)


@dataclass(frozen=True)
class Proposal:
    check: str
    before: BacktestResult
    after: BacktestResult
    before_objective: Objective
    after_objective: Objective
    changes: dict[str, tuple[float, float]]
    text: str
    diff: str
    candidates_tried: int


def knobs(check_block: Mapping[str, Any], every: float) -> list[Knob]:
    out: list[Knob] = []
    for j, det in enumerate(check_block.get("detectors") or []):
        if not isinstance(det, dict):
            continue
        for name in SCALED_PARAMS:
            value = det.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                out.append(Knob(("detectors", j, name), float(value), tuple(float(value) * s for s in _SCALES)))
        value = det.get("threshold", 0.5)
        if isinstance(value, int | float) and not isinstance(value, bool) and _is_series_detector(det):
            out.append(Knob(("detectors", j, "threshold"), float(value), _SCORE_THRESHOLDS))
    policy = check_block.get("policy") or {}
    current = parse_duration(policy.get("for", 0) or 0)
    out.append(Knob(("policy", "for"), current, tuple(every * m for m in _TICK_MULTIPLES)))
    return out


def _is_series_detector(block: Mapping[str, Any]) -> bool:
    from aiops import plugins
    from aiops.detection import SeriesDetector

    try:
        cls = plugins.load(plugins.DETECTORS, str(block.get("type")))
    except Exception:
        return False
    return isinstance(cls, type) and issubclass(cls, SeriesDetector)


def tune(
    config: Config,
    check: str,
    since: float,
    until: float,
    labels: Sequence[Label],
    replays: Mapping[str, Replay],
    *,
    on_candidate: Callable[[str, float, Objective], None] | None = None,
) -> Proposal:
    labels = [lab for lab in labels if lab.check == check]
    if not labels:
        raise AiopsError(f"no labels for check {check!r} between the given times: nothing to tune against")
    try:
        with open(config.path, encoding="utf-8") as fh:
            raw = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as exc:
        raise AiopsError(f"{config.path}: cannot re-read the config: {exc}") from None
    index = next(i for i, c in enumerate(config.settings.checks) if c.name == check)
    cfg = config.settings.checks[index]
    every = float(cfg.every or 60.0)
    block = raw["checks"][index]
    tunables = knobs(block, every)
    positives = sum(1 for lab in labels if lab.verdict.positive)
    tried = 0

    def evaluate(values: Mapping[tuple[str | int, ...], float]) -> tuple[Objective, BacktestResult, Config]:
        nonlocal tried
        tried += 1
        candidate = _apply(raw, index, values)
        parsed = parse_config(yaml.safe_dump(candidate, sort_keys=False), config.path)
        result = simulate(parsed, since, until, checks=[check], replays=replays)
        s = score(result.incidents, labels, until)
        changed = sum(1 for k in tunables if values.get(k.path, k.original) != k.original)
        objective = Objective(positives - s.detected, s.noise_paged, len(result.incidents), changed)
        return objective, dataclasses.replace(result, score=s), parsed

    current: dict[tuple[str | int, ...], float] = {}
    best_obj, before, _ = evaluate(current)
    first_obj, best_result = best_obj, before
    for _round in range(2 if len(tunables) > 1 else 1):
        moved = False
        for knob in tunables:
            for value in knob.candidates:
                trial = {**current, knob.path: value}
                if trial.get(knob.path) == current.get(knob.path, knob.original):
                    continue
                obj, result, _ = evaluate(trial)
                if on_candidate is not None:
                    on_candidate(knob.name, value, obj)
                if obj.key() < best_obj.key():
                    best_obj, best_result, current, moved = obj, result, trial, True
        if not moved:
            break
    proposal = _apply(raw, index, current)
    before_text = yaml.safe_dump(raw, sort_keys=False)
    text = yaml.safe_dump(proposal, sort_keys=False)
    diff = "".join(
        difflib.unified_diff(
            before_text.splitlines(keepends=True), text.splitlines(keepends=True), config.path, "proposal"
        )
    )
    changes = {k.name: (k.original, current[k.path]) for k in tunables if current.get(k.path, k.original) != k.original}
    return Proposal(check, before, best_result, first_obj, best_obj, changes, text, diff, tried)


def _apply(raw: Mapping[str, Any], index: int, values: Mapping[tuple[str | int, ...], float]) -> dict[str, Any]:
    out = copy.deepcopy(dict(raw))
    block = out["checks"][index]
    for path, value in values.items():
        node: Any = block
        for part in path[:-1]:
            node = node.setdefault(part, {}) if isinstance(part, str) else node[part]
        key = path[-1]
        node[key] = f"{value:g}s" if path[0] == "policy" else _number(value)
    return out


def _number(value: float) -> float | int:
    rounded = float(f"{value:.6g}")
    return int(rounded) if rounded.is_integer() and abs(rounded) < 1e15 else rounded
