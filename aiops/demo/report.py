"""The demo's self-contained HTML report: summary, incident timeline, and per scenario the evidence.

Why inline SVG and no plotting library: the report must open anywhere (a CI artefact, a laptop without
matplotlib), render identically in every browser, carry no script and fetch nothing. Every plot marks
the fault, the detection, the action and the verification on the same demo-seconds axis.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiops.demo.common import DRIFT_COLUMNS, FEATURES, TABLE
from aiops.demo.config import FRESH_MAX_AGE
from aiops.reportstyle import COLORS, CSS
from aiops.svgplot import Marker, histogram, line_chart
from aiops.svgplot import esc as _e


def _rows(db: Path, start: float, end: float, limit: int = 600) -> list[dict[str, Any]]:
    try:
        conn = sqlite3.connect(db, timeout=10)
        conn.row_factory = sqlite3.Row
        try:
            cur = conn.execute(
                f"SELECT * FROM {TABLE} WHERE ts >= ? AND ts < ? ORDER BY ts DESC LIMIT ?", (start, end, limit)
            )
            return [dict(r) for r in cur]
        finally:
            conn.close()
    except sqlite3.Error:
        return []


def _state_time(incident: dict[str, Any], state: str) -> float | None:
    for t in incident.get("transitions", []):
        if t["to_state"] == state:
            return float(t["at"])
    return None


def _markers(run: Any, result: Any) -> list[Marker]:
    d = run.demo_seconds
    t0 = run.started_at
    out: list[Marker] = [(d(result.fault_at - t0), "fault", COLORS["fault"])]
    for inc in result.incidents[:6]:
        out.append((d(float(inc["opened_at"]) - t0), f"#{inc['id']} detected", COLORS["detected"]))
        for a in inc["actions"]:
            if a["state"] in ("succeeded", "failed"):
                done = float(a["finished_at"] or a["created_at"])
                out.append((d(done - t0), f"{a['label']} done", COLORS["action"]))
        for state, key in (("escalated", "escalated"), ("resolved", "healed")):
            at = _state_time(inc, state)
            if at is not None and (state == "escalated" or result.outcome == "healed"):
                out.append((d(at - t0), "verified: healed" if key == "healed" else "escalated", COLORS[key]))
                break
    return out


def _window(run: Any, result: Any) -> tuple[float, float]:
    end = result.finished_at or time.time()
    return result.fault_at - 6 * run.tick(), end + 2 * run.tick()


def _sampled(run: Any, result: Any, key: str) -> tuple[list[float], list[float]]:
    start, end = _window(run, result)
    xs, ys = [], []
    for s in run.sampler.samples if run.sampler is not None else []:
        if start <= s["t"] <= end and s.get(key) is not None:
            xs.append(run.demo_seconds(s["t"] - run.started_at))
            ys.append(float(s[key]))
    return xs, ys


@dataclass(frozen=True)
class SeriesPlot:
    """A scenario shown as one sampled series against the limit its check alerts at."""

    key: str  # of the sampled service stats
    title: str
    limit: tuple[float, str]  # where the dashed line is drawn, and its label
    ylabel: str
    in_demo_seconds: bool = False  # a duration in wall seconds, shown in demo seconds


SERIES_PLOTS = {
    "bad-deploy": SeriesPlot("p95_latency_ms", "p95 latency (ms), model service /stats", (80, "threshold 80 ms"), "ms"),
    "pipeline-kill": SeriesPlot(
        "newest_age",
        "age of the newest prediction-log row (demo s)",
        (FRESH_MAX_AGE, f"freshness limit {FRESH_MAX_AGE:g} s"),
        "demo s",
        in_demo_seconds=True,
    ),
    "flapping": SeriesPlot(
        "error_rate", "error rate, model service /stats", (0.2, "threshold 0.2"), "share of requests"
    ),
}


def _plots(run: Any, result: Any) -> str:
    markers = _markers(run, result)
    plot = SERIES_PLOTS.get(result.name)
    if plot is not None:
        xs, ys = _sampled(run, result, plot.key)
        if plot.in_demo_seconds:
            ys = [run.demo_seconds(y) for y in ys]
        return line_chart([(plot.title, xs, ys, "#1a73e8")], markers, hline=plot.limit, ylabel=plot.ylabel)
    # drift: the feature distributions before and after the fault, and a drifted feature over time
    firing = next((_state_time(i, "firing") for i in result.incidents), None) or result.fault_at + 8 * run.tick()
    before = _rows(run.layout.db, result.fault_at - 600, result.fault_at)
    after = _rows(run.layout.db, result.fault_at, firing)
    drifted = _drifted_columns(result) or DRIFT_COLUMNS
    hists = "".join(
        histogram(
            [float(r[c]) for r in before], [float(r[c]) for r in after], f"{c}: reference (blue) vs window (orange)"
        )
        for c in drifted[:4]
    )
    start, end = _window(run, result)
    rows = list(reversed(_rows(run.layout.db, start, end, 5000)))
    col = drifted[0]
    buckets: dict[int, list[float]] = {}
    for r in rows:
        buckets.setdefault(int((r["ts"] - run.started_at) * run.speed // 10), []).append(float(r[col]))
    xs = [k * 10.0 + 5 for k in sorted(buckets)]
    ys = [sum(v) / len(v) for _, v in sorted(buckets.items())]
    chart = line_chart([(f"mean of {col} per 10 demo-s", xs, ys, "#1a73e8")], markers, ylabel=col)
    return f'<div style="display:flex;flex-wrap:wrap;gap:8px">{hists}</div>{chart}'


def _drifted_columns(result: Any) -> list[str]:
    for inc in result.incidents:
        for finding in (inc.get("evidence") or {}).get("findings", []):
            columns = (finding.get("evidence") or {}).get("columns") or {}
            found = [c for c, v in columns.items() if isinstance(v, dict) and v.get("drift")]
            if found:
                return [c for c in FEATURES if c in found]
    return []


def _incident_tables(run: Any, result: Any) -> str:
    parts = []

    def rel(at: Any) -> str:
        return f"+{run.demo_seconds(float(at) - result.fault_at):.0f}s"

    for inc in result.incidents:
        rows = "".join(
            f"<tr><td>{rel(t['at'])}</td><td>{_e(t['to_state'])}</td><td>{_e(t['actor'])}</td>"
            f"<td>{_e(t['reason'])}</td></tr>"
            for t in inc["transitions"]
        )
        acts = "".join(
            f"<tr><td>{_e(a['label'])}</td><td>{_e(a['plan'])}</td><td>{_e(a['guard'] or '')}</td>"
            f"<td>{_e(a['state'])}</td><td>{_e(a['outcome'])}</td></tr>"
            for a in inc["actions"]
        )
        notes = ", ".join(f"{n['event']} ({n['state']})" for n in inc["notifications"]) or "none"
        held = "; ".join(inc.get("guard_notes") or [])
        held_html = f"<br><span class='muted'>held back by the guards: <b>{_e(held)}</b></span>" if held else ""
        parts.append(
            f"<div class='card'><b>Incident #{inc['id']}</b> — {_e(inc['summary'])}<br>"
            f"<span class='muted'>final state <b>{_e(inc['state'])}</b>; notifications: {_e(notes)}</span>{held_html}"
            f"<table><tr><th>when (after fault)</th><th>state</th><th>by</th><th>why</th></tr>{rows}</table>"
            + (
                f"<table><tr><th>action</th><th>plan</th><th>guard decision</th><th>state</th><th>outcome</th></tr>"
                f"{acts}</table>"
                if acts
                else "<p class='muted'>no action executed for this incident</p>"
            )
            + "</div>"
        )
    return "".join(parts) or "<p class='bad'>no incident was opened</p>"


def _timeline(run: Any) -> str:
    """One chart of the whole run: each scenario's fault and outcomes on one axis."""
    markers: list[Marker] = []
    for r in run.results:
        markers.extend(m if m[1] != "fault" else (m[0], f"{r.name}: fault", m[2]) for m in _markers(run, r)[:4])
    xs, ys = [], []
    for s in run.sampler.samples if run.sampler is not None else []:
        if s.get("rows_per_s") is not None:
            xs.append(run.demo_seconds(s["t"] - run.started_at))
            ys.append(float(s["rows_per_s"]) / run.speed)
    return line_chart(
        [("prediction-log rows per demo second", xs, ys, "#5f6b7a")], markers, ylabel="rows/s", height=260
    )


def render(run: Any, summary: dict[str, Any]) -> str:
    """The whole report as one HTML string (no external resources, no script)."""
    rows = []
    for name, s in summary["scenarios"].items():
        heal = s["time_to_heal"] if s["time_to_heal"] is not None else s.get("time_to_escalate")
        ttd = "-" if s["time_to_detect"] is None else f"{s['time_to_detect']:.0f} s"
        tth = "-" if heal is None else f"{heal:.0f} s"
        rows.append(
            f"<tr><td><a href='#{_e(name)}'>{_e(name)}</a></td><td>{_e(s['description'])}</td>"
            f"<td>{'yes' if s['detected'] else 'no'}</td><td>{_e(s['action'] or '-')}</td>"
            f"<td>{_e(s['outcome'])}</td><td>{ttd}</td><td>{tth}</td>"
            f"<td class='{'ok' if s['ok'] else 'bad'}'>{'as intended' if s['ok'] else 'NOT as intended'}</td></tr>"
        )
    sections = []
    for r in run.results:
        s = summary["scenarios"][r.name]
        extra = ""
        if r.name == "flapping":
            extra = (
                f"<p>{s['openings']} openings; {s['actions_executed']} action executed, then held by the guards "
                f"({_e('; '.join(s['actions_held']) or '-')}); flapping announced once: "
                f"{'yes' if s['flapping_notified'] else 'no'}; {s['notifications_held']} messages held; "
                f"escalations: {s['escalations']}.</p>"
            )
        verdict = "verified healed" if s["verified"] else s["outcome"]
        sections.append(
            f"<h2 id='{_e(r.name)}'>{_e(r.name)} — {_e(r.description)}</h2>"
            f"<p>Expected: <b>{_e(r.expected)}</b>. Result: <b class='{'ok' if s['ok'] else 'bad'}'>{_e(verdict)}"
            f"</b>. Time to detect {s['time_to_detect']} demo s; time to "
            f"{'heal' if s['time_to_heal'] is not None else 'escalate'} "
            f"{s['time_to_heal'] if s['time_to_heal'] is not None else s.get('time_to_escalate')} demo s.</p>"
            f"{extra}{_plots(run, r)}{_incident_tables(run, r)}"
        )
    notes = "".join(
        f"<tr><td>+{run.demo_seconds(m['received_at'] - run.started_at):.0f}s</td><td>{_e(m['event'])}</td>"
        f"<td>{_e(m['title'])}</td><td>{'valid' if m['signature_ok'] else 'INVALID'}</td></tr>"
        for m in run.receiver.messages
    )
    ok = summary["all_ok"]
    verdict = "Every scenario ended as intended." if ok else "Some scenario did not end as intended."
    try:
        config_text = run.layout.config.read_text(encoding="utf-8")
    except OSError:
        config_text = "(not written)"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>aiops demo report</title><style>{CSS}</style></head><body>
<h1>aiops demo report</h1>
<p class="muted">Speed {summary["speed"]:g}: {summary["wall_seconds"]} wall seconds = {summary["demo_seconds"]:.0f} demo
seconds. Champion trained on scikit-learn's breast-cancer data (held-out accuracy
{summary["champion_accuracy"]:.3f}). Files: <code>{_e(summary["directory"])}</code>.</p>
<p class="{"ok" if ok else "bad"}">{verdict}</p>
<p class="muted">All times are demo seconds (wall seconds x speed), except inside the daemon's own words in the
"why" column of the transition tables, which are wall seconds of this compressed run.</p>
<table><tr><th>scenario</th><th>fault</th><th>detected</th><th>action</th><th>outcome</th><th>time to detect</th>
<th>time to heal / escalate</th><th></th></tr>{"".join(rows)}</table>
<h2>Timeline</h2>{_timeline(run)}
{"".join(sections)}
<h2>The config the daemon ran</h2>
<details><summary>{_e(run.layout.config)} (also printed by <code>aiops demo --print-config</code>)</summary>
<pre style="overflow-x:auto;background:#f4f6f9;padding:1em;border-radius:6px">{_e(config_text)}</pre></details>
<h2>Notifications received by the local webhook</h2>
<p class="muted">Signed with HMAC-SHA256 (<code>X-Aiops-Signature</code>), checked by the receiver.</p>
<table><tr><th>when</th><th>event</th><th>title</th><th>signature</th></tr>{notes}</table>
</body></html>
"""


def write_report(run: Any, summary: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(run, summary), encoding="utf-8")
