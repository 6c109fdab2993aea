"""An incident's evidence as SVG plots: the detected series with the detection and the actions marked, or the
drifted features of a drift finding.

What can be plotted is what the store keeps: each transition records the findings that caused it, and the
incident the latest ones. A series finding carries the value at the detection time and, for detectors that
know it, the expected band (``lower``/``upper``/``limit``); the points plotted are those values over the
incident's life, on seconds since it opened. A drift finding carries each column's test statistic (drawn as
bars, drifted columns red) and, when the detector stored them, samples of the reference and the current
window (``reference_values``/``current_values``, drawn as overlaid histograms). The raw series between two
findings is not in the store; the source (a Prometheus, a table) still has it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiops.svgplot import Marker, bar_chart, histogram, line_chart

COLORS = {"detected": "#e37400", "action": "#1a73e8", "resolved": "#137333", "escalated": "#7b1fa2"}
SERIES_COLORS = ("#1a73e8", "#b3261e", "#137333", "#7b1fa2")


@dataclass(frozen=True)
class Plot:
    """One plot of an incident page: a caption (also its text alternative) and the SVG markup."""

    caption: str
    svg: str


def incident_plots(incident: Mapping[str, Any], recorded: Sequence[Mapping[str, Any]] = ()) -> list[Plot]:
    """Every plot the incident's evidence supports (none when it carries no numbers). ``recorded``: the
    series of the incident's check as the daemon recorded them around it (see :mod:`aiops.series_history`),
    plotted instead of the values at the findings when the incident's series is among them."""
    findings = list(_findings(incident))
    plots = _drift_plots(findings)
    series = _recorded_plot(incident, recorded) or _series_plot(incident, findings)
    return ([series] if series is not None else []) + plots


def _findings(incident: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Findings of every transition, oldest first, then the incident's latest ones."""
    for transition in incident.get("transitions") or []:
        yield from _listed(transition.get("evidence"))
    yield from _listed(incident.get("evidence"))


def _listed(evidence: Any) -> list[Mapping[str, Any]]:
    if not isinstance(evidence, Mapping):
        return []
    return [f for f in evidence.get("findings") or [] if isinstance(f, Mapping)]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _recorded_plot(incident: Mapping[str, Any], recorded: Sequence[Mapping[str, Any]]) -> Plot | None:
    """The incident's series as recorded: the one its ``series`` label names (with matching labels), else all."""
    labels = incident.get("labels") or {}
    wanted = labels.get("series")
    chosen = [
        r
        for r in recorded
        if wanted is None
        or (r.get("name") == wanted and all(labels.get(k) == v for k, v in (r.get("labels") or {}).items()))
    ][: len(SERIES_COLORS)]
    if not chosen:
        return None
    origin = _number(incident.get("opened_at")) or 0.0
    series = [
        (str(r["name"]), [t - origin for t in r["timestamps"]], list(r["values"]), SERIES_COLORS[i])
        for i, r in enumerate(chosen)
    ]
    names = ", ".join(name for name, _, _, _ in series)
    svg = line_chart(
        series,
        _markers(incident, origin),
        hline=_limit(incident),
        xlabel="seconds since the incident opened",
        ylabel=names[:60],
    )
    return Plot(f"{names} as collected around the incident, with the detection and the actions marked", svg)


def _limit(incident: Mapping[str, Any]) -> tuple[float, str] | None:
    """The newest limit or expected bound any finding of the incident carries."""
    found = None
    for finding in _findings(incident):
        evidence = finding.get("evidence") or {}
        for key, label in (("limit", "limit"), ("upper", "expected upper bound"), ("lower", "expected lower bound")):
            bound = _number(evidence.get(key))
            if bound is not None:
                found = (bound, f"{label} {bound:.4g}")
                break
    return found


def _series_plot(incident: Mapping[str, Any], findings: Sequence[Mapping[str, Any]]) -> Plot | None:
    origin = _number(incident.get("opened_at")) or 0.0
    points: dict[str, dict[float, float]] = {}
    for finding in findings:
        evidence = finding.get("evidence") or {}
        value, at = _number(evidence.get("value")), _number(evidence.get("timestamp"))
        if value is None or at is None:
            continue
        name = str((finding.get("labels") or {}).get("series") or finding.get("detector") or "value")
        points.setdefault(name, {})[at - origin] = value
    if not points:
        return None
    series = [
        (name, sorted(xy), [xy[x] for x in sorted(xy)], SERIES_COLORS[i % len(SERIES_COLORS)])
        for i, (name, xy) in enumerate(sorted(points.items())[: len(SERIES_COLORS)])
    ]
    svg = line_chart(
        series,
        _markers(incident, origin),
        hline=_limit(incident),
        xlabel="seconds since the incident opened",
        ylabel=", ".join(points)[:60],
        dots=True,
    )
    caption = (
        f"values of {', '.join(points)} at each finding (the series itself was not recorded by this daemon "
        "process), with the detection and the actions marked"
    )
    return Plot(caption, svg)


def _markers(incident: Mapping[str, Any], origin: float) -> list[Marker]:
    out: list[Marker] = []
    detected = _number(incident.get("firing_at")) or _number(incident.get("opened_at"))
    if detected is not None:
        out.append((detected - origin, "detected", COLORS["detected"]))
    for action in incident.get("actions") or []:
        label = str(action.get("action_label") or action.get("action_type") or "action")
        started, finished = _number(action.get("started_at")), _number(action.get("finished_at"))
        if started is not None:
            out.append((started - origin, f"{label} started", COLORS["action"]))
        if finished is not None:
            out.append((finished - origin, f"{label} {action.get('state', 'done')}", COLORS["action"]))
    for transition in incident.get("transitions") or []:
        state = transition.get("to_state")
        at = _number(transition.get("at"))
        if state in ("resolved", "escalated") and at is not None:
            out.append((at - origin, str(state), COLORS[str(state)]))
    return out


def _drift_plots(findings: Sequence[Mapping[str, Any]]) -> list[Plot]:
    """For the latest drift finding: each column's statistic, and histograms when samples were stored."""
    latest = next(
        (f for f in reversed(findings) if isinstance((f.get("evidence") or {}).get("columns"), Mapping)), None
    )
    if latest is None:
        return []
    columns: Mapping[str, Any] = latest["evidence"]["columns"]
    bars = []
    plots: list[Plot] = []
    for name, column in columns.items():
        if not isinstance(column, Mapping):
            continue
        statistic = _number(column.get("statistic"))
        if statistic is not None:
            bars.append((str(name), statistic, "#b3261e" if column.get("drift") else "#1a73e8"))
        reference, current = column.get("reference_values"), column.get("current_values")
        if column.get("drift") and isinstance(reference, list) and isinstance(current, list):
            ref = [v for v in map(_number, reference) if v is not None]
            cur = [v for v in map(_number, current) if v is not None]
            title = f"{name}: reference (blue) vs current (orange)"
            plots.append(Plot(title, histogram(ref, cur, title)))
    if bars:
        test = next((str(c.get("test")) for c in columns.values() if isinstance(c, Mapping) and c.get("test")), "")
        title = f"drift statistic per column{f' ({test})' if test else ''}; drifted columns in red"
        plots.insert(0, Plot(title, bar_chart(bars, title)))
    return plots


def backtest_plots(results: Mapping[str, Any]) -> dict[str, list[str]]:
    """Per config of a saved backtest, one chart per would-be incident (same order as its incidents)."""
    from aiops.backtest.report import incident_chart

    return {name: [incident_chart(i) for i in result.incidents] for name, result in results.items()}
