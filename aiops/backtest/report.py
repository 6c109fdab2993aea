"""The backtest's HTML report: the summary (side by side with ``--against``), then each would-be incident
with its timeline, its actions and holds, and a plot of the evidence — drawn with the demo report's SVG
chart, so the page is one self-contained file with no script."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from aiops.backtest.records import BacktestResult, WouldBeIncident
from aiops.reportstyle import COLORS, CSS
from aiops.svgplot import esc as _e
from aiops.svgplot import line_chart

_LINE_COLORS = ("#1a73e8", "#5f6b7a", "#0b8043")


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _summary_rows(results: list[tuple[str, BacktestResult]]) -> str:
    def row(label: str, values: list[str]) -> str:
        return f"<tr><th>{_e(label)}</th>" + "".join(f"<td>{_e(v)}</td>" for v in values) + "</tr>"

    head = "<tr><th></th>" + "".join(f"<th>{_e(name)}</th>" for name, _ in results) + "</tr>"
    rs = [r for _, r in results]
    lines = [
        row("checks", [", ".join(r.checks) for r in rs]),
        row("ticks replayed", [str(r.ticks) for r in rs]),
        row("would-be incidents", [str(len(r.incidents)) for r in rs]),
        row("cleared within `for`", [str(r.cleared_pending) for r in rs]),
        row("actions (run / held)", [f"{_ran(r)} / {sum(len(i.holds) for i in r.incidents)}" for r in rs]),
        row("pages per week", [f"{r.pages_per_week:.2f}" for r in rs]),
    ]
    if any(r.score is not None for r in rs):
        lines += [
            row("precision", [_pct(r.score.precision if r.score else None) for r in rs]),
            row("recall", [_pct(r.score.recall if r.score else None) for r in rs]),
            row(
                "mean time to detect",
                [
                    "-"
                    if not r.score or r.score.mean_time_to_detect is None
                    else f"{r.score.mean_time_to_detect:.0f} s"
                    for r in rs
                ],
            ),
            row(
                "noise windows paged",
                [f"{r.score.noise_paged}/{r.score.noise_windows}" if r.score else "-" for r in rs],
            ),
        ]
    return f"<table>{head}{''.join(lines)}</table>"


def _ran(result: BacktestResult) -> int:
    return sum(1 for i in result.incidents for a in i.actions if a.state in ("succeeded", "failed"))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def incident_chart(incident: WouldBeIncident) -> str:
    """The replayed series around a would-be incident, with firing, actions and resolution marked (SVG);
    empty when the replay kept no series for it. The HTML report and the console draw the same chart."""
    series = [
        (p.name, [t - incident.opened_at for t in p.timestamps], list(p.values), _LINE_COLORS[k % 3])
        for k, p in enumerate(incident.plot)
    ]
    markers = [(incident.firing_at - incident.opened_at, "firing", COLORS["detected"])]
    markers += [(a.at - incident.opened_at, a.action, COLORS["action"]) for a in incident.actions]
    if incident.resolved_at is not None:
        markers.append((incident.resolved_at - incident.opened_at, "resolved", COLORS["healed"]))
    return line_chart(series, markers, xlabel="seconds from opening", ylabel="value") if series else ""


def _incident(n: int, incident: WouldBeIncident) -> str:
    plot = incident_chart(incident)
    timeline = "".join(
        f"<tr><td>{when(t.at)}</td><td>{_e(t.state)}</td><td>{_e(t.actor)}</td><td>{_e(t.reason)}</td></tr>"
        for t in incident.timeline
    )
    actions = "".join(
        f"<tr><td>{when(a.at)}</td><td>{_e(a.action)} ({_e(a.mode)})</td><td>{_e(a.target)}</td>"
        f"<td>{_e(a.state)}</td><td>{_e(a.outcome or a.guard or '')}</td></tr>"
        for a in incident.actions
    ) + "".join(
        f"<tr><td>{when(h.at)}</td><td>held</td><td></td><td>held</td><td>{_e(h.reason)}</td></tr>"
        for h in incident.holds
    )
    return (
        f"<div class='card'><h3>#{n} {_e(incident.check)}: {_e(incident.summary)}</h3>"
        f"<p class='muted'>opened {when(incident.opened_at)}, fired {when(incident.firing_at)}, "
        f"ended {when(incident.resolved_at)} ({_e(incident.final_state)})</p>{plot}"
        f"<table><tr><th>when</th><th>state</th><th>by</th><th>why</th></tr>{timeline}</table>"
        + (
            f"<table><tr><th>when</th><th>action</th><th>target</th><th>state</th><th>outcome / why</th></tr>"
            f"{actions}</table>"
            if actions
            else ""
        )
        + "</div>"
    )


def render(results: list[tuple[str, BacktestResult]]) -> str:
    first = results[0][1]
    sections = []
    for name, result in results:
        cards = "".join(_incident(n + 1, i) for n, i in enumerate(result.incidents)) or "<p>No incident.</p>"
        sections.append(f"<h2>{_e(name)}: would-be incidents</h2>{cards}")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>aiops backtest</title><style>{CSS}</style></head><body>
<h1>aiops backtest</h1>
<p class="muted">{when(first.since)} to {when(first.until)} UTC, replayed on a simulated clock through the real
detectors and policy. Actions and notifications are simulated: nothing was run or sent.</p>
{_summary_rows(results)}
{"".join(sections)}
</body></html>
"""


def write_report(results: list[tuple[str, BacktestResult]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(results), encoding="utf-8")
