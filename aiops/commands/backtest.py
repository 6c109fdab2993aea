"""``aiops backtest`` and ``aiops tune``: what would this config have done over that history, and which
thresholds would have kept the useful incidents and dropped the noise? Exit status 0, or 2 with one line on
stderr for bad input."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click


def _time(value: str, what: str) -> float:
    from aiops.sources.file import parse_timestamp

    ts = parse_timestamp(value)
    if ts is None:
        raise click.BadParameter(f"{value!r} is not epoch seconds or an ISO 8601 time", param_hint=what)
    return ts


def _quiet_logs() -> None:
    from aiops.logs import configure_logging

    configure_logging("warning", stream=sys.stderr)


def _labels(path: str | None, check: str | None, since: float, until: float, store_url: str | None = None) -> Any:
    """Labels from ``--labels FILE``, else (given ``store_url``) the operators' verdicts in the store."""
    from aiops.backtest.labels import FileLabels, StoreVerdicts

    if path is not None:
        return FileLabels(path).labels(check, since, until)
    if store_url is not None:
        return StoreVerdicts(store_url).labels(check, since, until)
    return None


def _scored(result: Any, labels_path: str | None, since: float, until: float, store_url: str | None) -> Any:
    import dataclasses

    from aiops.backtest.labels import score

    if labels_path is None and store_url is not None:
        labels = [lab for check in result.checks for lab in _labels(None, check, since, until, store_url)]
    else:
        labels = _labels(labels_path, None, since, until)
    return result if labels is None else dataclasses.replace(result, score=score(result.incidents, labels, until))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _print(name: str, result: Any) -> None:
    from aiops.backtest.report import when

    click.echo(f"== {name}: {result.config}")
    click.echo(
        f"{result.ticks} ticks of {', '.join(result.checks)} replayed in {result.wall_seconds:.1f} s; "
        f"{len(result.incidents)} would-be incidents ({result.cleared_pending} more cleared within `for`), "
        f"{result.pages} pages = {result.pages_per_week:.2f} per week"
    )
    for n, i in enumerate(result.incidents, 1):
        click.echo(
            f"  #{n} {i.check} fired {when(i.firing_at)} ended {when(i.resolved_at)} [{i.final_state}] {i.summary}"
        )
        for a in i.actions:
            click.echo(
                f"      action {a.action} ({a.mode}) on {a.target or '-'}: {a.state} {a.outcome or a.guard or ''}"
            )
        for h in i.holds:
            click.echo(f"      held at {when(h.at)}: {h.reason}")
    s = result.score
    if s is not None:
        ttd = "-" if s.mean_time_to_detect is None else f"{s.mean_time_to_detect:.0f} s"
        click.echo(
            f"  precision {_pct(s.precision)}, recall {_pct(s.recall)} ({s.detected}/{s.positives} windows), "
            f"mean time to detect {ttd}, noise windows paged {s.noise_paged}/{s.noise_windows}"
        )


@click.command()
@click.argument("config_path", metavar="CONFIG", type=click.Path(dir_okay=False))
@click.option("--check", "checks", multiple=True, help="Only this check (repeatable; default: every check).")
@click.option("--from", "since", required=True, help="Start of the history (epoch seconds or ISO 8601, UTC).")
@click.option("--to", "until", required=True, help="End of the history.")
@click.option("--against", type=click.Path(dir_okay=False), help="A second config replayed on the same data.")
@click.option("-o", "--output", "report", type=click.Path(dir_okay=False), help="Write an HTML report here.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the results as JSON here.")
@click.option("--labels", "labels_path", type=click.Path(dir_okay=False), help="CSV/JSON of check,start,end,verdict.")
@click.option("--verdicts", is_flag=True, help="Score against the operators' verdicts in the config's store.")
@click.option("--actions-fail", is_flag=True, help="Simulated actions report failure (default: they ran).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
@click.option("--executor", help="Run on a compute executor: local, dask=tcp://HOST:8786 or ray=http://HOST:8265.")
@click.option("--save", is_flag=True, help="Keep the result under the config's state_dir for the web console.")
def backtest(
    config_path: str,
    checks: Sequence[str],
    since: str,
    until: str,
    against: str | None,
    report: str | None,
    json_path: str | None,
    labels_path: str | None,
    actions_fail: bool,
    progress: bool | None,
    executor: str | None,
    verdicts: bool,
    save: bool,
) -> None:
    """Replay checks over history through their real detectors and policy; nothing is run or sent.

    Prints the would-be incidents with their timelines, the actions that would have run or been held and
    why, and pages per week; with --labels, precision, recall and time to detect.
    """
    from aiops.backtest.simulate import read_history, simulate
    from aiops.config.loader import load_config

    start, end = _time(since, "--from"), _time(until, "--to")
    _quiet_logs()
    show = sys.stderr.isatty() if progress is None else progress
    results = []
    base_replays: dict[str, Any] = {}
    base_sources: dict[str, Any] = {}
    for name, path in [("config", config_path), ("against", against)]:
        if path is None:
            continue
        config = load_config(path)
        names = list(checks) or None
        store_url = config.settings.store.url if verdicts else None
        if executor:
            from aiops.backtest.job import parse_executor, run_on

            remote = run_on(parse_executor(executor), path, start, end, list(checks), action_ok=not actions_fail)
            results.append((name, _scored(remote, labels_path, start, end, store_url)))
            _print(name, results[-1][1])
            continue
        selected = [c for c in config.settings.checks if not names or c.name in names]
        # the same source block reads the same data: --against replays what the first config read
        reuse = {c.name: base_replays[c.name] for c in selected if base_sources.get(c.name) == c.source}
        fresh = [c.name for c in selected if c.name not in reuse]
        replays = {**reuse, **(read_history(config, fresh, start, end) if fresh else {})}
        if name == "config":
            base_replays = replays
            base_sources = {c.name: c.source for c in selected}
        result = simulate(config, start, end, checks=names, replays=replays, progress=show, action_ok=not actions_fail)
        results.append((name, _scored(result, labels_path, start, end, store_url)))
        _print(name, results[-1][1])
    if json_path:
        Path(json_path).write_text(json.dumps({n: r.to_dict() for n, r in results}, indent=2), encoding="utf-8")
    if save:
        from aiops.backtest.saved import save as save_result

        saved = save_result(load_config(config_path).settings.state_dir, dict(results))
        click.echo(f"saved: {saved} (the console shows it under /ui/backtests)")
    if report:
        from aiops.backtest.report import write_report

        write_report(results, Path(report))
        click.echo(f"report: {report}")


@click.command()
@click.argument("check")
@click.option("--config", "-c", "config_path", required=True, type=click.Path(dir_okay=False), help="Config file.")
@click.option("--from", "since", required=True, help="Start of the history (epoch seconds or ISO 8601, UTC).")
@click.option("--to", "until", required=True, help="End of the history.")
@click.option(
    "--labels",
    "labels_path",
    type=click.Path(dir_okay=False),
    help="CSV/JSON of check,start,end,verdict (useful|noise|missed); default: the operators' verdicts in the store.",
)
@click.option(
    "-o", "--output", "output", type=click.Path(dir_okay=False), help="Proposal file (default: CONFIG.proposal.yaml)."
)
def tune(check: str, config_path: str, since: str, until: str, labels_path: str | None, output: str | None) -> None:
    """Propose thresholds and durations for CHECK that keep the useful incidents and drop the noise.

    Every candidate is backtested; prints the config diff and the before/after counts, and writes the
    proposal to a file. The running config is never edited.
    """
    from aiops.backtest import tune as tuning
    from aiops.backtest.simulate import read_history
    from aiops.config.loader import load_config

    start, end = _time(since, "--from"), _time(until, "--to")
    _quiet_logs()
    config = load_config(config_path)
    labels = _labels(labels_path, check, start, end, config.settings.store.url)
    replays = read_history(config, [check], start, end)
    proposal = tuning.tune(config, check, start, end, labels, replays)
    b, a = proposal.before_objective, proposal.after_objective
    click.echo(f"{proposal.candidates_tried} candidates backtested for {check}")
    click.echo(
        f"before: {b.incidents} incidents, useful windows missed {b.useful_lost}, noise windows paged {b.noise_paged}"
    )
    click.echo(
        f"after:  {a.incidents} incidents, useful windows missed {a.useful_lost}, noise windows paged {a.noise_paged}"
    )
    for knob, (old, new) in proposal.changes.items():
        click.echo(f"  {knob}: {old:g} -> {new:g}")
    click.echo(proposal.diff or "(no change proposed)")
    target = Path(output or Path(config_path).with_suffix(".proposal.yaml"))
    target.write_text(proposal.text, encoding="utf-8")
    click.echo(f"proposal: {target}")
