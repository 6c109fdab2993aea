"""The console's pages as data: what each page shows, read from the daemon facade, and the changes its forms
make. Each loader runs on a worker thread (the backend may wait on the store) and returns the template's
variables; :mod:`aiops.console.views` routes, authorises and renders them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol, runtime_checkable

from starlette.requests import Request

from aiops.console.auth import ConsoleAuth
from aiops.console.evidence import backtest_plots, incident_plots
from aiops.durations import parse_duration
from aiops.errors import AiopsError
from aiops.http.backend import ApiBackend, FeedbackBackend
from aiops.http.problems import public_message

ACTOR: Final = "console"
LIST_LIMIT: Final = 500
RECORDED_BEFORE: Final = 600.0  # seconds of series shown before an incident opened, at most
RECORDED_AFTER: Final = 30.0  # and after it resolved
SILENCE_CHOICES: Final = (("1h", "1 hour"), ("4h", "4 hours"), ("1d", "1 day"), ("7d", "7 days"))
INCIDENT_STATES: Final = (
    "pending", "firing", "remediating", "verifying", "escalated", "acknowledged", "silenced", "resolved"
)  # fmt: skip


@runtime_checkable
class ChecksBackend(Protocol):
    """The checks page's view of the daemon: each configured check with its last tick (see Daemon)."""

    def list_checks(self) -> list[dict[str, Any]]: ...


@runtime_checkable
class BacktestBackend(Protocol):
    """The backtest pages' view of the daemon: results saved by ``aiops backtest --save`` (see Daemon)."""

    def list_backtests(self) -> list[dict[str, Any]]: ...

    def get_backtest(self, name: str) -> dict[str, Any]: ...


@runtime_checkable
class SeriesBackend(Protocol):
    """The incident page's view of the recorded series (see :mod:`aiops.series_history`)."""

    def recent_series(self, check: str, start: float, end: float) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class ConsoleContext:
    """What the console's handlers use: the daemon (the API's backend) and who may do what."""

    backend: ApiBackend
    auth: ConsoleAuth


class Refused(Exception):
    """Answer with an error page: the status, and a message for people."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# -- pages ----------------------------------------------------------------------------------------------------


def _header(ctx: ConsoleContext) -> dict[str, Any]:
    """What every page's header shows: the kill switch, and how many actions wait for a person."""
    return {
        "paused": ctx.backend.paused(),
        "waiting_count": len(ctx.backend.list_actions("awaiting_approval", LIST_LIMIT)),
    }


def incidents_page(ctx: ConsoleContext, request: Request) -> dict[str, Any]:
    state = request.query_params.get("state", "")
    check = request.query_params.get("check", "")
    if state and state not in INCIDENT_STATES:
        raise Refused(400, f"Unknown state {state[:40]!r}; choose one of {', '.join(INCIDENT_STATES)}.")
    incidents = ctx.backend.list_incidents(state or None, LIST_LIMIT)
    checks = sorted({str(i.get("check_name", "")) for i in incidents} | set(_check_names(ctx)))
    if check:
        incidents = [i for i in incidents if i.get("check_name") == check]
    return {
        "incidents": incidents,
        "states": INCIDENT_STATES,
        "checks": checks,
        "state": state,
        "check": check,
        **_header(ctx),
    }


def incident_page(ctx: ConsoleContext, request: Request) -> dict[str, Any]:
    incident_id = int(request.path_params["id"])
    incident = ctx.backend.get_incident(incident_id)
    if incident is None:
        raise Refused(404, f"No incident {incident_id}.")
    return {
        "incident": incident,
        "plots": incident_plots(incident, _recorded(ctx, incident)),
        "silence_choices": SILENCE_CHOICES,
        "verdicts_enabled": isinstance(ctx.backend, FeedbackBackend),
        **_header(ctx),
    }


def _recorded(ctx: ConsoleContext, incident: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The incident's check's recorded series from a little before it opened until it resolved (or now)."""
    opened = incident.get("opened_at")
    if not isinstance(ctx.backend, SeriesBackend) or not isinstance(opened, int | float):
        return []
    resolved = incident.get("resolved_at")
    end = resolved if isinstance(resolved, int | float) else time.time()
    before = min(RECORDED_BEFORE, max(30.0, end - opened))  # as much before as the incident lasted
    return ctx.backend.recent_series(str(incident.get("check_name", "")), opened - before, end + RECORDED_AFTER)


def backtests_page(ctx: ConsoleContext, request: Request) -> dict[str, Any]:
    runs = ctx.backend.list_backtests() if isinstance(ctx.backend, BacktestBackend) else None
    return {"runs": runs, **_header(ctx)}


def backtest_page(ctx: ConsoleContext, request: Request) -> dict[str, Any]:
    """One saved backtest: per config, the would-be incidents with their timelines, actions and holds."""
    if not isinstance(ctx.backend, BacktestBackend):
        raise Refused(404, "This daemon keeps no backtest results.")
    name = str(request.path_params["name"])
    try:
        results = ctx.backend.get_backtest(name)
    except AiopsError as exc:
        raise Refused(404, str(exc)) from None
    return {"name": name, "results": results, "plots": backtest_plots(results), **_header(ctx)}


EFFECTIVENESS_WINDOWS: Final = (("7d", "7 days"), ("30d", "30 days"), ("90d", "90 days"))


def effectiveness_page(ctx: ConsoleContext, request: Request) -> dict[str, Any]:
    """Which remediation heals what: per action type and target, the share of runs that healed."""
    window = request.query_params.get("since", "30d")
    if window not in dict(EFFECTIVENESS_WINDOWS):
        raise Refused(400, f"Choose a window of {', '.join(w for w, _ in EFFECTIVENESS_WINDOWS)}.")
    rows = ctx.backend.effectiveness(time.time() - parse_duration(window)) if isinstance(
        ctx.backend, FeedbackBackend
    ) else None
    return {"rows": rows, "window": window, "windows": EFFECTIVENESS_WINDOWS, **_header(ctx)}


def actions_page(ctx: ConsoleContext, request: Request) -> dict[str, Any]:
    return {
        "waiting": ctx.backend.list_actions("awaiting_approval", LIST_LIMIT),
        "recent": ctx.backend.list_actions(None, 50),
        **_header(ctx),
    }


def checks_page(ctx: ConsoleContext, request: Request) -> dict[str, Any]:
    checks = ctx.backend.list_checks() if isinstance(ctx.backend, ChecksBackend) else None
    for check in checks or []:
        if check.get("error"):  # a source's error may quote SQL or a path: shown as the API would show it
            check["error"] = public_message(str(check["error"])) or "failed; see the daemon's log"
    open_counts: dict[str, int] = {}
    for incident in ctx.backend.list_incidents(None, LIST_LIMIT):
        if incident.get("state") != "resolved":
            name = str(incident.get("check_name", ""))
            open_counts[name] = open_counts.get(name, 0) + 1
    return {
        "checks": checks,
        "open_counts": open_counts,
        "verdicts_enabled": isinstance(ctx.backend, FeedbackBackend),
        **_header(ctx),
    }


def _check_names(ctx: ConsoleContext) -> list[str]:
    if not isinstance(ctx.backend, ChecksBackend):
        return []
    return [str(c["name"]) for c in ctx.backend.list_checks()]


VERDICT_CHOICES = ("useful", "noise")


# -- mutations ------------------------------------------------------------------------------------------------


def ack(ctx: ConsoleContext, incident_id: int, form: Mapping[str, str]) -> object:
    return ctx.backend.acknowledge(incident_id, ACTOR, form.get("comment", "")[:2000])


def silence(ctx: ConsoleContext, incident_id: int, form: Mapping[str, str]) -> object:
    raw = form.get("duration", "")
    try:
        seconds = parse_duration(raw[:32])
    except (ValueError, AiopsError):
        raise Refused(400, f"Silence duration {raw[:32]!r} is not a duration such as 1h or 30m.") from None
    if not 0 < seconds <= 366 * 86400:
        raise Refused(400, "A silence lasts between one second and 366 days.")
    return ctx.backend.silence(incident_id, ACTOR, seconds, form.get("comment", "")[:2000])


def verdict(ctx: ConsoleContext, incident_id: int, form: Mapping[str, str]) -> object:
    """An operator's verdict on the incident: the labels `aiops tune` learns from."""
    kind = form.get("verdict", "")
    if kind not in VERDICT_CHOICES:
        raise Refused(400, f"A verdict is one of {', '.join(VERDICT_CHOICES)}.")
    if not isinstance(ctx.backend, FeedbackBackend):
        raise Refused(404, "This daemon does not record verdicts.")
    return ctx.backend.record_verdict(incident_id, kind, ACTOR, form.get("comment", "")[:2000])


def missed(ctx: ConsoleContext, _: int, form: Mapping[str, str]) -> object:
    """A problem a check should have caught and did not: the ``missed`` label `aiops tune` learns from."""
    from aiops.sources.file import parse_timestamp

    if not isinstance(ctx.backend, FeedbackBackend):
        raise Refused(404, "This daemon does not record verdicts.")
    check = form.get("check", "")[:100]
    start, end = parse_timestamp(form.get("from", "")[:40]), parse_timestamp(form.get("to", "")[:40])
    if start is None or end is None or end <= start:
        raise Refused(400, "Give the missed problem's start and end (UTC), the end after the start.")
    return ctx.backend.record_missed(check, start, end, ACTOR, form.get("comment", "")[:2000])
