"""``aiops demo``: the whole self-healing loop in one command, on real parts, with a report at the end.

A scikit-learn model served over HTTP, a feature pipeline writing a prediction log with late labels, and the
aiops daemon watching them with a generated config (``--print-config``). Four faults on a timeline (data
drift, a bad deploy, a killed pipeline, a flapping upstream); each is detected, remediated and verified, or
escalated where that is the intended outcome. ``--speed`` compresses time; figures are in demo seconds.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from aiops.errors import AiopsError


@click.command("demo")
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    type=click.Choice(["drift", "bad-deploy", "pipeline-kill", "flapping", "all"]),
    default=("all",),
    show_default=True,
    help="Run only this scenario (repeatable).",
)
@click.option(
    "--speed",
    type=click.FloatRange(1, 40),
    default=10.0,
    show_default=True,
    help="Time compression: check intervals, windows and the timeline are divided by N.",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    default="aiops-data/demo-run",
    show_default=True,
    help="Working directory (emptied if a previous demo created it).",
)
@click.option("--json-summary", type=click.Path(dir_okay=False), help="Write the per-scenario figures as JSON.")
@click.option("--report", type=click.Path(dir_okay=False), help="HTML report path (default: DIR/report.html).")
@click.option("--print-config", is_flag=True, help="Print the generated aiops config and exit.")
@click.option("--live/--plain", default=None, help="Live terminal view (default: when stdout is a terminal).")
@click.option(
    "--keep-running",
    is_flag=True,
    help="After the timeline and the report, keep the service, pipeline and daemon running until SIGTERM/Ctrl-C "
    "(what `aiops run` does with no config).",
)
@click.option("--listen", help="HOST:PORT for the demo daemon's /metrics and API (default: a free port).")
def demo(
    scenarios: tuple[str, ...],
    speed: float,
    directory: str,
    json_summary: str | None,
    report: str | None,
    print_config: bool,
    live: bool | None,
    keep_running: bool = False,
    listen: str | None = None,
) -> None:
    """Run the built-in end-to-end demo: detect, remediate, verify, report."""
    import dataclasses

    from aiops.demo.scenario import DEFAULT_REPORT, SCENARIOS, DemoRun

    names = list(SCENARIOS) if "all" in scenarios else [s for s in SCENARIOS if s in scenarios]
    run = DemoRun(Path(directory), speed)
    if listen:
        run.endpoints = dataclasses.replace(run.endpoints, daemon_listen=listen)
    if print_config:
        click.echo(run.config_text(), nl=False)
        return
    use_live = sys.stdout.isatty() if live is None else live
    view = None
    if use_live:
        from aiops.demo.live import LiveView

        view = LiveView(run, names)
        run.emit = view.note
    else:
        started = time.time()
        run.emit = lambda line: click.echo(f"[{time.time() - started:6.1f}s] {line}")
    report_path = Path(report) if report else Path(directory) / DEFAULT_REPORT
    run.report_path = report_path
    summary: dict[str, object] | None = None
    try:
        if view is not None:
            view.start()
        try:
            run.setup()
            run.warm_up()
            for name in names:
                run.run_scenario(name)
            run.collect_all()
            if keep_running:
                if view is not None:
                    view.stop()
                    view = None
                summary = _finish(run, report_path, json_summary)
                click.echo(
                    f"timeline done; the model service, pipeline and daemon keep running (daemon: "
                    f"http://{run.endpoints.daemon_listen}, config: {run.layout.root / 'aiops.yaml'}). "
                    "Stop with Ctrl-C or SIGTERM."
                )
                _wait_for_stop()
        finally:
            run.teardown()
            if view is not None:
                view.stop()
    except RuntimeError as exc:
        raise AiopsError(f"demo failed: {exc} (logs in {directory})") from exc
    if summary is None:
        summary = _finish(run, report_path, json_summary)
    if not summary["all_ok"]:
        raise AiopsError("not every scenario ended as intended; see the report")


def _finish(run: object, report_path: Path, json_summary: str | None) -> dict[str, object]:
    """Write the report and the summary, print the closing table; returns the summary."""
    from aiops.demo.report import write_report
    from aiops.demo.scenario import DemoRun

    assert isinstance(run, DemoRun)
    summary: dict[str, object] = run.summary()
    write_report(run, summary, report_path)
    summary["report"] = str(report_path)
    text = json.dumps(summary, indent=2)
    (run.layout.root / "summary.json").write_text(text, encoding="utf-8")
    if json_summary:
        Path(json_summary).write_text(text, encoding="utf-8")
    click.echo(_table(summary))
    click.echo(f"report: {report_path}" + (f"   summary: {json_summary}" if json_summary else ""))
    return summary


def _wait_for_stop() -> None:
    """Block until SIGTERM or SIGINT, like the daemon does."""
    import signal
    import threading

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass


def _table(summary: dict[str, object]) -> str:
    """The closing table: one line per scenario with its figures in demo seconds."""
    scenarios = summary["scenarios"]
    assert isinstance(scenarios, dict)
    lines = [f"{'scenario':<14} {'outcome':<10} {'action':<16} {'TTD':>7} {'TTH/TTE':>7}  ok"]
    for name, s in scenarios.items():
        ttd = "-" if s["time_to_detect"] is None else f"{s['time_to_detect']:.0f}s"
        tth = s["time_to_heal"] if s["time_to_heal"] is not None else s.get("time_to_escalate")
        tth_s = "-" if tth is None else f"{tth:.0f}s"
        lines.append(
            f"{name:<14} {s['outcome']:<10} {s['action'] or '-'!s:<16} {ttd:>7} {tth_s:>7}  "
            f"{'yes' if s['ok'] else 'NO'}"
        )
    lines.append("TTD: time to detect, TTH/TTE: time to heal (or to escalate), in demo seconds")
    lines.append(
        f"wall {summary['wall_seconds']}s at speed {summary['speed']:g} "
        f"(= {summary['demo_seconds']:.0f} demo seconds); {summary['notifications']} notifications received"
    )
    return "\n".join(lines)
