"""``aiops verdict`` and ``aiops effectiveness``: operators' feedback on incidents, and what the remediations
achieved.

Both work on the store the config names, whether or not a daemon is running (like ``aiops pause``): a verdict
changes no incident, it only labels one, so it needs neither the engine nor the API token.
"""

from __future__ import annotations

import getpass
import json
import time
from typing import TYPE_CHECKING, Any

import click

from aiops.commands.db import _config_option

if TYPE_CHECKING:
    from aiops.config.loader import Config
    from aiops.store.store import Store


def _open(config_path: str | None) -> tuple[Config, Store]:
    from aiops.commands.common import load_config_or_demo
    from aiops.store.store import Store

    config = load_config_or_demo(config_path)
    store = Store(config.settings.store.url)
    store.migrate()
    return config, store


def _time(value: str, name: str) -> float:
    from aiops.sources.ingest import parse_time

    try:
        return parse_time(float(value) if value.replace(".", "", 1).isdigit() else value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=name) from None


def _default_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a container without /etc/passwd entry
        return "unknown"


@click.command("verdict")
@_config_option
@click.argument("incident_id", type=int, required=False)
@click.argument("kind", type=click.Choice(["useful", "noise"]), required=False)
@click.option("--missed", is_flag=True, help="A problem the check should have opened an incident for, and did not.")
@click.option("--check", "check", help="With --missed: the check that missed it.")
@click.option("--from", "from_", metavar="T", help="With --missed: start of the window (ISO 8601 or epoch seconds).")
@click.option("--to", "to", metavar="T", help="With --missed: end of the window (ISO 8601 or epoch seconds).")
@click.option("--comment", default="", help="Why (shown with the verdict).")
@click.option("--by", "actor", default=None, help="Who gives the verdict (default: the current user).")
@click.option("--json", "as_json", is_flag=True, help="Print the stored verdict as JSON.")
def verdict(
    config_path: str | None,
    incident_id: int | None,
    kind: str | None,
    missed: bool,
    check: str | None,
    from_: str | None,
    to: str | None,
    comment: str,
    actor: str | None,
    as_json: bool,
) -> None:
    """Mark an incident useful or noise, or record a missed one (--missed --check NAME --from T --to T).

    The newest verdict of an incident counts; older ones stay in the history. Verdicts are the labels of
    `aiops backtest` / `aiops tune` and are exported as aiops_incident_verdicts_total{check,verdict}.
    """
    from aiops.feedback import require_check
    from aiops.store import verdicts as v

    who = "cli:" + (actor or _default_actor())
    if missed:
        if incident_id is not None or kind is not None:
            raise click.UsageError("--missed takes no INCIDENT_ID or verdict: give --check, --from and --to")
        if not (check and from_ and to):
            raise click.UsageError("--missed needs --check NAME, --from T and --to T")
        starts, ends = _time(from_, "--from"), _time(to, "--to")
        config, store = _open(config_path)
        require_check(check, [c.name for c in config.settings.checks])
        recorded = v.mark_missed(store, check, starts, ends, actor=who, comment=comment, now=time.time())
    else:
        if incident_id is None or kind is None:
            raise click.UsageError("give INCIDENT_ID and useful|noise, or --missed --check NAME --from T --to T")
        if check or from_ or to:
            raise click.UsageError("--check, --from and --to go with --missed")
        _config, store = _open(config_path)
        recorded = v.mark_incident(store, incident_id, kind, actor=who, comment=comment, now=time.time())
    if as_json:
        click.echo(json.dumps(recorded.to_dict(), indent=2))
    elif recorded.incident_id is None:
        click.echo(f"recorded: check {recorded.check} missed a problem (verdict {recorded.id})")
    else:
        click.echo(f"incident {recorded.incident_id} marked {recorded.verdict.value} (verdict {recorded.id})")


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _seconds(value: float | None) -> str:
    from aiops.durations import format_duration

    return "-" if value is None else format_duration(value)


@click.command("effectiveness")
@_config_option
@click.option("--since", default="30d", show_default=True, help="How far back, as a duration (7d, 12h).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "-o", "--output", type=click.Choice(["table", "wide", "json"]), default=None, help="json: same as --json."
)
def effectiveness(config_path: str | None, since: str, as_json: bool, output: str | None) -> None:
    """Per action type and target: the share of runs that healed, the median time to heal, the escalations.

    A run healed when verification then resolved its incident; it escalated when the incident went to a
    person after it. Runs still remediating or verifying are counted apart (IN PROGRESS).
    """
    from aiops.commands.common import table_width
    from aiops.durations import parse_duration
    from aiops.effectiveness import effectiveness as compute
    from aiops.text import table

    try:
        window = parse_duration(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    if window <= 0:
        raise click.BadParameter("must be positive", param_hint="--since")
    _config, store = _open(config_path)
    rows = compute(store, time.time() - window)
    if as_json or output == "json":
        click.echo(json.dumps([r.to_dict() for r in rows], indent=2))
        return
    if not rows:
        click.echo(f"no remediation ran in the last {since}")
        return
    headers = ["ACTION", "TARGET", "RUNS", "HEALED", "HEAL RATIO", "MEDIAN TO HEAL", "ESCALATED", "IN PROGRESS"]
    cells: list[list[Any]] = [
        [
            r.action,
            r.target,
            str(r.runs),
            str(r.healed),
            _ratio(r.heal_ratio),
            _seconds(r.median_heal_seconds),
            str(r.escalated),
            str(r.in_progress),
        ]
        for r in rows
    ]
    for line in table(headers, cells, flexible=[1], width=table_width(output), right=[2, 3, 4, 5, 6, 7]):
        click.echo(line)
