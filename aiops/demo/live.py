"""The live terminal view of ``aiops demo`` (rich): checks, open incidents, last actions, scenario progress.

Why read the daemon's store and metrics registry rather than hook into the engine: the view must show what
an operator would see with ``aiops incidents`` / ``aiops actions`` / ``/metrics``, and must never be able to
change what the daemon does. It refreshes four times a second from a thread of its own.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from aiops.text import abbreviate

_STATE_STYLE = {
    "pending": "yellow",
    "firing": "bold red",
    "remediating": "bold blue",
    "verifying": "cyan",
    "escalated": "bold magenta",
    "resolved": "green",
    "healed": "bold green",
}


class LiveView:
    """Renders a :class:`aiops.demo.scenario.DemoRun` while it runs."""

    def __init__(self, run: Any, scenarios: list[str]) -> None:
        self.run = run
        self.scenarios = scenarios
        self.notes: deque[str] = deque(maxlen=6)
        self._live = Live(self._render(), refresh_per_second=4, transient=False)
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="demo-live", daemon=True)

    def note(self, line: str) -> None:
        self.notes.append(f"[{self.run.demo_seconds(time.time() - self.run.started_at):6.0f}s] {line}")

    def start(self) -> None:
        self._live.start()
        self._thread.start()

    def stop(self) -> None:
        self._halt.set()
        self._thread.join(2)
        self._live.update(self._render())
        self._live.stop()

    def _loop(self) -> None:
        while not self._halt.wait(0.25):
            try:
                self._live.update(self._render())
            except Exception as exc:  # the store may be closing at shutdown: keep the last frame
                self.notes.append(f"(view: {type(exc).__name__})")

    # -- rendering -------------------------------------------------------------------------------------

    def _render(self) -> Group:
        run = self.run
        elapsed = time.time() - run.started_at
        head = Text.assemble(
            ("aiops demo", "bold"),
            f"  speed {run.speed:g}  wall {elapsed:5.1f}s  demo {run.demo_seconds(elapsed):6.0f}s   ",
            (run.phase, "italic"),
        )
        parts: list[Any] = [head]
        daemon = run.daemon
        if daemon is not None and run.phase != "stopping":
            parts.extend([self._checks(daemon), self._incidents(daemon), self._actions(daemon)])
        parts.append(self._scenarios())
        parts.append(Panel("\n".join(self.notes) or "-", title="events", title_align="left"))
        return Group(*parts)

    def _checks(self, daemon: Any) -> Table:
        table = Table(title="checks", title_justify="left", expand=True)
        for col in ("check", "every", "runs", "findings", "status"):
            table.add_column(col)
        open_by_check: dict[str, str] = {}
        for row in daemon.store.list_incidents(open_only=True, limit=50):
            open_by_check.setdefault(row.check_name, row.state.value)
        for name, cr in daemon.runtime().checks.items():
            runs = daemon.registry.get_sample_value("aiops_check_runs_total", {"check": name, "outcome": "ok"})
            findings = sum(
                daemon.registry.get_sample_value("aiops_findings_total", {"check": name, "kind": kind}) or 0
                for kind in ("anomaly", "drift", "data_quality", "performance")
            )
            state = open_by_check.get(name, "healthy")
            table.add_row(
                name,
                f"{cr.config.every:g}s",
                f"{runs or 0:.0f}",
                f"{findings:.0f}",
                Text(state, style=_STATE_STYLE.get(state, "green")),
            )
        return table

    def _incidents(self, daemon: Any) -> Table:
        table = Table(title="incidents (newest first)", title_justify="left", expand=True)
        _columns(table, names=("#", "check", "state"), text=("summary", "guard"))
        for row in daemon.store.list_incidents(limit=6):
            state = row.state.value
            table.add_row(
                str(row.id),
                row.check_name,
                Text(state, style=_STATE_STYLE.get(state, "")),
                abbreviate(row.summary, 70),
                abbreviate(str(row.guard_note or ""), 60),
            )
        return table

    def _actions(self, daemon: Any) -> Table:
        table = Table(title="last actions (guard decision, outcome)", title_justify="left", expand=True)
        _columns(table, names=("#", "inc", "action", "state"), text=("guard", "outcome"))
        for a in daemon.store.list_actions(limit=5):
            table.add_row(
                str(a.id),
                str(a.incident_id),
                a.action_label,
                a.state.value,
                abbreviate(a.guard or "", 40),
                abbreviate(a.summary, 60),
            )
        return table

    def _scenarios(self) -> Table:
        table = Table(title="scenarios", title_justify="left", expand=True)
        for col in ("scenario", "status", "time to detect", "time to heal"):
            table.add_column(col)
        done = {r.name: r for r in self.run.results}
        for name in self.scenarios:
            r = done.get(name)
            if r is None:
                table.add_row(name, "waiting", "-", "-")
                continue
            status = r.outcome if r.finished_at else "running"
            ttd = tth = "-"
            if r.incidents:
                first = r.incidents[0]
                ttd = f"{self.run.demo_seconds(float(first['opened_at']) - r.fault_at):.0f}s"
                if first.get("resolved_at") and r.outcome == "healed":
                    tth = f"{self.run.demo_seconds(float(first['resolved_at']) - r.fault_at):.0f}s"
            style = "bold green" if status == r.expected else ("yellow" if status == "running" else "bold red")
            table.add_row(name, Text(status, style=style), ttd, tth)
        return table


def _columns(table: Table, *, names: tuple[str, ...], text: tuple[str, ...]) -> None:
    """Names (checks, actions, states) are never cut; free text, already abbreviated on a word boundary,
    wraps between words when the terminal is narrower (rich's ellipsis would cut inside a word)."""
    for col in names:
        table.add_column(col, no_wrap=True)
    for col in text:
        table.add_column(col, overflow="fold")
