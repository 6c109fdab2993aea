"""The API as data: one :class:`Endpoint` per route, with its auth rule, its body schema and its handler.

Why a table: the ASGI app (:mod:`aiops.http.app`) routes, authorises and validates from it, and the OpenAPI
description (:mod:`aiops.http.openapi`) is generated from it, so what is documented is what is enforced.

Handlers are plain functions ``(Call) -> Response``, run on a worker thread (they call the backend, which
may wait on the store); only endpoints marked ``inline`` (the liveness probe, the OpenAPI document) answer
on the event loop.
Every write is attributed to the actor ``"api"`` in the audit trail (``"approval-link"`` for a signed link,
``"verdict-link"`` for a signed verdict link; a verdict's body may name the person: ``"api:<actor>"``).
"""

from __future__ import annotations

import enum
import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

from pydantic import BaseModel
from starlette.responses import HTMLResponse, PlainTextResponse, Response

import aiops
from aiops.durations import parse_duration
from aiops.http.backend import ApiBackend, ClusterBackend, FeedbackBackend, IngestBackend, LeaseHolder
from aiops.http.bodies import CommentBody, EmptyBody, MissedBody, RequestBody, SilenceBody, VerdictBody, validate_body
from aiops.http.problems import HttpError, json_response, problem_response, public_message
from aiops.sources.ingest import (
    AlertmanagerWebhook,
    IngestRequest,
    alertmanager_rows,
    ingest_rows,
    validate_alertmanager,
    validate_ingest,
)

ACTOR: Final = "api"
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000
STATE_PATTERN: Final = r"^[a-z_]{1,32}$"
CHECK_PATTERN: Final = r"^[^\x00-\x1f]{1,100}$"
DEFAULT_EFFECTIVENESS_WINDOW: Final = "30d"
# a signed link's check: (token, id, value, expires, sig) -> None when valid, else why not
LinkCheck = Callable[[str, int, str, str, str], str | None]


class Auth(enum.Enum):
    """Who may call an endpoint."""

    NONE = "none"  # reads and probes: bind to 127.0.0.1 (the default) or put a proxy in front
    BEARER = "bearer"  # Authorization: Bearer <server.token>; without a configured token: off (403)
    BEARER_OR_LOOPBACK = "bearer_or_loopback"  # as BEARER, but open without a token on a loopback listener
    SIGNED_LINK = "signed_link"  # the query carries an HMAC signature derived from the token


@dataclass(frozen=True)
class ApiContext:
    """What handlers may use: the daemon (as its Protocol), the token and how the listener is bound."""

    backend: ApiBackend
    token: str | None
    loopback: bool


@dataclass(frozen=True)
class Call:
    """One validated request: the path id (0 when the path has none), the query (last value of each name)."""

    ctx: ApiContext
    path_id: int
    query: Mapping[str, str]
    body: BaseModel | None
    now: float


@dataclass(frozen=True)
class QueryParam:
    name: str
    schema: Mapping[str, Any]
    description: str
    required: bool = False


@dataclass(frozen=True)
class Endpoint:
    """One method on one path. ``path`` is an OpenAPI template (``{id}`` is a positive integer)."""

    method: str
    path: str
    handler: Callable[[Call], Response]
    summary: str
    auth: Auth = Auth.NONE
    body_model: type[BaseModel] | None = None  # the request body's schema; None: no body is read
    parse_body: Callable[[dict[str, Any]], BaseModel] | None = None
    status: int = 200
    response_schema: Mapping[str, Any] = field(default_factory=dict)
    response_type: str = "application/json"
    query: tuple[QueryParam, ...] = ()
    inline: bool = False  # answered on the event loop: must never block


# -- handlers -----------------------------------------------------------------------------------------------


def _livez(_call: Call) -> Response:
    return PlainTextResponse("ok")


def _readyz(call: Call) -> Response:
    try:
        ok, reason = call.ctx.backend.ready()
    except Exception:
        ok, reason = False, "readiness check failed; see the daemon's log"
    if ok:
        return PlainTextResponse("ok")
    return PlainTextResponse(f"not ready: {public_message(reason or '') or 'unknown reason'}", 503)


def _reload(call: Call) -> Response:
    ok, message = call.ctx.backend.reload()
    shown = public_message(message or "") or "reload failed; see the daemon's log"
    if ok:
        return json_response(200, {"status": "reloaded", "message": shown})
    # 500 like Prometheus' and Alertmanager's /-/reload, so config-management tools treat both alike.
    return problem_response(500, shown if message else "reload failed")


def _limit(call: Call) -> int:
    raw = call.query.get("limit", "").strip()
    if not raw:
        return DEFAULT_LIMIT
    if not raw.isascii() or not raw.isdigit() or len(raw) > 6:
        raise HttpError(400, f"limit must be an integer between 1 and {MAX_LIMIT}", field="limit")
    limit = int(raw)
    if not 1 <= limit <= MAX_LIMIT:
        raise HttpError(400, f"limit must be between 1 and {MAX_LIMIT}, not {limit}", field="limit")
    return limit


def _state(call: Call) -> str | None:
    raw = call.query.get("state", "").strip()
    if not raw:
        return None
    if re.fullmatch(STATE_PATTERN, raw) is None:
        raise HttpError(400, "state must be a state name such as firing or awaiting_approval", field="state")
    return raw


def _incidents(call: Call) -> Response:
    return json_response(200, {"incidents": call.ctx.backend.list_incidents(_state(call), _limit(call))})


def _incident(call: Call) -> Response:
    item = call.ctx.backend.get_incident(call.path_id)
    if item is None:
        raise HttpError(404, f"no incident {call.path_id}")
    return json_response(200, item)


def _comment(body: BaseModel | None) -> str:
    assert isinstance(body, CommentBody)
    return body.comment or ""


def _ack(call: Call) -> Response:
    return json_response(200, call.ctx.backend.acknowledge(call.path_id, ACTOR, _comment(call.body)))


def _silence(call: Call) -> Response:
    assert isinstance(call.body, SilenceBody)
    result = call.ctx.backend.silence(call.path_id, ACTOR, call.body.duration, _comment(call.body))
    return json_response(200, result)


def _actions(call: Call) -> Response:
    return json_response(200, {"actions": call.ctx.backend.list_actions(_state(call), _limit(call))})


def _decide_by_api(approved: bool, call: Call) -> Response:
    return json_response(200, call.ctx.backend.approve(call.path_id, ACTOR, approved))


def _set_paused(paused: bool, call: Call) -> Response:
    call.ctx.backend.set_paused(paused, ACTOR)
    return json_response(200, {"paused": call.ctx.backend.paused()})


def _status(call: Call) -> Response:
    return json_response(200, {"paused": call.ctx.backend.paused(), "version": aiops.__version__})


def _ingest_backend(call: Call) -> IngestBackend:
    backend = call.ctx.backend
    if not isinstance(backend, IngestBackend):
        raise HttpError(501, "this server has no store to ingest into")
    return backend


def _ingest(call: Call) -> Response:
    """Validated by the schema (400 naming the field), stored durably, then 202: a 2xx means it is stored."""
    assert isinstance(call.body, IngestRequest)
    return json_response(202, _ingest_backend(call).append_events(ingest_rows(call.body, call.now)))


def _alertmanager(call: Call) -> Response:
    assert isinstance(call.body, AlertmanagerWebhook)
    return json_response(202, _ingest_backend(call).append_events(alertmanager_rows(call.body, call.now)))


def _checked_signed_link(call: Call, verify: LinkCheck, field: str, kind: str) -> str:
    """The value a signed link carries in ``field`` (e.g. ``decision=approve``), once its signature and
    expiry are checked; a 403 otherwise, and always without ``server.token`` (the links' key derives from it)."""
    if call.ctx.token is None:
        raise HttpError(403, f"{kind} links need server.token (or token_file / AIOPS_API_TOKEN)")
    value = call.query.get(field, "")
    why = verify(call.ctx.token, call.path_id, value, call.query.get("expires", ""), call.query.get("sig", ""))
    if why is not None:
        raise HttpError(403, f"invalid {kind} link: {why}")
    return value


def _checked_link(call: Call) -> str:
    from aiops.approval_links import verify

    return _checked_signed_link(call, verify, "decision", "approval")


def _page(title: str, body: str) -> HTMLResponse:
    """A bare page for people who opened a link from a message: ``title`` and ``body`` are escaped already."""
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body style='font-family:sans-serif'>{body}</body></html>"
    )


def _decide_page(call: Call) -> Response:
    """GET shows a confirmation page only: link previews and prefetchers must never decide anything."""
    decision = _checked_link(call)
    verb = "Approve" if decision == "approve" else "Deny"
    action_id = call.path_id
    return _page(
        f"aiops: {verb.lower()} action {action_id}",
        f"<h1>{verb} action {action_id}?</h1><p>This decides the remediation waiting for approval.</p>"
        f"<form method='post'><button type='submit'>{verb} action {action_id}</button></form>",
    )


def _decide(call: Call) -> Response:
    decision = _checked_link(call)
    result = call.ctx.backend.approve(call.path_id, "approval-link", decision == "approve")
    state = html.escape(str(result.get("state", "")))
    return _page("aiops", f"<h1>Action {call.path_id}: {state}</h1>")


# -- verdicts and effectiveness ----------------------------------------------------------------------------


def _feedback(call: Call) -> FeedbackBackend:
    backend = call.ctx.backend
    if not isinstance(backend, FeedbackBackend):
        raise HttpError(501, "this server has no store to keep verdicts in")
    return backend


def _api_actor(actor: str | None) -> str:
    return f"{ACTOR}:{actor}" if actor else ACTOR


def _verdict(call: Call) -> Response:
    assert isinstance(call.body, VerdictBody)
    body = call.body
    return json_response(
        201, _feedback(call).record_verdict(call.path_id, body.verdict, _api_actor(body.actor), body.comment or "")
    )


def _missed(call: Call) -> Response:
    assert isinstance(call.body, MissedBody)
    body = call.body
    recorded = _feedback(call).record_missed(
        body.check, body.starts_at, body.ends_at, _api_actor(body.actor), body.comment or ""
    )
    return json_response(201, recorded)


def _verdicts(call: Call) -> Response:
    check = call.query.get("check", "").strip() or None
    if check is not None and re.fullmatch(CHECK_PATTERN, check) is None:
        raise HttpError(400, "check must be a check name (1 to 100 printable characters)", field="check")
    verdict = call.query.get("verdict", "").strip() or None
    if verdict is not None and verdict not in _VERDICT_KINDS:
        raise HttpError(400, f"verdict must be one of {', '.join(_VERDICT_KINDS)}", field="verdict")
    return json_response(200, {"verdicts": _feedback(call).list_verdicts(check, verdict, _limit(call))})


def _effectiveness(call: Call) -> Response:
    raw = call.query.get("since", "").strip() or DEFAULT_EFFECTIVENESS_WINDOW
    try:
        window = parse_duration(raw)
    except ValueError:
        raise HttpError(400, 'since must be a duration such as "7d" or "12h"', field="since") from None
    if not 0 < window <= 3660 * 86400:
        raise HttpError(400, "since must be positive and at most 10 years", field="since")
    since = call.now - window
    return json_response(200, {"since": since, "actions": _feedback(call).effectiveness(since)})


def _cluster(call: Call) -> Response:
    backend = call.ctx.backend
    if not isinstance(backend, ClusterBackend):
        raise HttpError(501, "this server has no store to list replicas from")
    body: dict[str, Any] = {"members": backend.membership.view()}
    if isinstance(backend, LeaseHolder):
        body["replica"], body["owned"] = backend.leases.replica, backend.leases.owned()
    return json_response(200, body)


def _checked_verdict_link(call: Call) -> str:
    from aiops.verdict_links import verify

    return _checked_signed_link(call, verify, "verdict", "verdict")


def _verdict_page(call: Call) -> Response:
    """GET shows a confirmation page only: link previews and prefetchers must never record a verdict."""
    verdict = _checked_verdict_link(call)
    incident = call.ctx.backend.get_incident(call.path_id)
    if incident is None:
        raise HttpError(404, f"no incident {call.path_id}")
    check = html.escape(str(incident.get("check_name") or incident.get("check") or ""))
    summary = html.escape(str(incident.get("summary") or ""))
    meaning = "worth a person's attention" if verdict == "useful" else "noise: it should not have opened"
    return _page(
        f"aiops: mark incident {call.path_id} {verdict}",
        f"<h1>Mark incident {call.path_id} as {verdict}?</h1><p>{check}: {summary}</p>"
        f"<p>This records that the incident was {html.escape(meaning)}.</p>"
        f"<form method='post'><button type='submit'>Mark incident {call.path_id} {verdict}</button></form>",
    )


def _verdict_by_link(call: Call) -> Response:
    verdict = _checked_verdict_link(call)
    _feedback(call).record_verdict(call.path_id, verdict, "verdict-link", "")
    return _page(
        "aiops", f"<h1>Incident {call.path_id} marked {verdict}</h1><p>Thank you: verdicts tune the checks.</p>"
    )


# -- schemas of the answers ---------------------------------------------------------------------------------

_OBJECT: Final = {"type": "object", "additionalProperties": True}
_INCIDENT: Final = {
    "type": "object",
    "required": ["id", "state"],
    "properties": {"id": {"type": "integer"}, "state": {"type": "string"}},
    "additionalProperties": True,
}
_PAUSED: Final = {"type": "object", "required": ["paused"], "properties": {"paused": {"type": "boolean"}}}
_ACCEPTED: Final = {
    "type": "object",
    "required": ["accepted"],
    "properties": {
        "accepted": {"type": "integer", "minimum": 0},
        "first_id": {"type": ["integer", "null"]},
        "last_id": {"type": ["integer", "null"]},
    },
}
_LIST_QUERY: Final = (
    QueryParam("state", {"type": "string", "pattern": STATE_PATTERN}, "only this state"),
    QueryParam(
        "limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}, "newest first"
    ),
)
_VERDICT_KINDS: Final = ("useful", "noise", "missed")
_VERDICT: Final = {
    "type": "object",
    "required": ["id", "verdict", "check", "starts_at", "ends_at", "actor", "created_at"],
    "properties": {
        "id": {"type": "integer"},
        "verdict": {"type": "string", "enum": list(_VERDICT_KINDS)},
        "check": {"type": "string"},
        "incident_id": {"type": ["integer", "null"]},
        "fingerprint": {"type": ["string", "null"]},
        "starts_at": {"type": "number"},
        "ends_at": {"type": "number"},
        "comment": {"type": "string"},
        "actor": {"type": "string"},
        "created_at": {"type": "number"},
    },
}
_EFFECT: Final = {
    "type": "object",
    "required": ["action", "target", "runs", "healed", "escalated", "in_progress", "heal_ratio"],
    "properties": {
        "action": {"type": "string"},
        "target": {"type": "string"},
        "runs": {"type": "integer", "description": "finished runs"},
        "healed": {"type": "integer"},
        "escalated": {"type": "integer"},
        "in_progress": {"type": "integer"},
        "heal_ratio": {"type": ["number", "null"]},
        "median_heal_seconds": {"type": ["number", "null"]},
    },
}
_MEMBER: Final = {
    "type": "object",
    "required": [
        "replica",
        "host",
        "pid",
        "started_at",
        "heartbeat_at",
        "heartbeat_age",
        "alive",
        "version",
        "address",
    ],
    "properties": {
        "replica": {
            "type": "string",
            "description": "host:pid:process-start, on Linux followed by @boot-id/start-ticks",
        },
        "host": {"type": "string"},
        "pid": {"type": "integer"},
        "started_at": {"type": "number"},
        "heartbeat_at": {"type": "number"},
        "heartbeat_age": {"type": "number", "description": "seconds since the last heartbeat"},
        "alive": {"type": "boolean", "description": "recent heartbeat and (same host) process still running"},
        "version": {"type": "string"},
        "address": {"type": "string", "description": "the replica's API listen address"},
        "checks_owned": {"type": "integer", "description": "checks whose lease the replica holds"},
        "lease_age_min": {"type": ["number", "null"], "description": "seconds since its youngest lease's claim"},
        "lease_age_max": {"type": ["number", "null"], "description": "seconds since its oldest lease's claim"},
    },
}
_VERDICT_QUERY: Final = (
    QueryParam("check", {"type": "string", "pattern": CHECK_PATTERN}, "only this check"),
    QueryParam("verdict", {"type": "string", "enum": list(_VERDICT_KINDS)}, "only this kind"),
    _LIST_QUERY[1],
)


def _write(
    path: str,
    handler: Callable[[Call], Response],
    summary: str,
    response_schema: Mapping[str, Any],
    model: type[BaseModel] = EmptyBody,
    parse: Callable[[dict[str, Any]], BaseModel] | None = None,
    status: int = 200,
) -> Endpoint:
    """A POST that needs the bearer token and whose JSON body ``model`` validates (``parse`` when set)."""
    if parse is None:
        assert issubclass(model, RequestBody)
        parse = partial(validate_body, model)
    return Endpoint(
        "POST", path, handler, summary, Auth.BEARER, model, parse, status=status, response_schema=response_schema
    )


def _list_of(key: str, items: Mapping[str, Any]) -> dict[str, Any]:
    """The schema of an answer ``{key: [item, ...]}``."""
    return {"type": "object", "required": [key], "properties": {key: {"type": "array", "items": items}}}


def _listing(path: str, handler: Callable[[Call], Response], summary: str, key: str) -> Endpoint:
    """A GET answering ``{key: [...]}``, filtered by ``state`` and bounded by ``limit``."""
    return Endpoint("GET", path, handler, summary, query=_LIST_QUERY, response_schema=_list_of(key, _INCIDENT))


def _signed_link(
    path: str,
    page: tuple[Callable[[Call], Response], str],
    act: tuple[Callable[[Call], Response], str],
    choice: QueryParam,
) -> tuple[Endpoint, Endpoint]:
    """The two endpoints of a signed link carrying ``choice``: GET is a confirmation ``page`` only (link
    previews and prefetchers fetch links), POST (its form's button) does ``act``. The signature authorizes
    both, and the POST's body (a browser form's empty form data) is not read."""
    query = (
        choice,
        QueryParam("expires", {"type": "string", "pattern": "^[0-9]{1,12}$"}, "epoch seconds", required=True),
        QueryParam("sig", {"type": "string", "pattern": "^[0-9a-f]{64}$"}, "HMAC-SHA256, hex", required=True),
    )
    get, post = (
        Endpoint(method, path, handler, summary, Auth.SIGNED_LINK, query=query, response_type="text/html")
        for method, (handler, summary) in (("GET", page), ("POST", act))
    )
    return get, post


ENDPOINTS: Final[tuple[Endpoint, ...]] = (
    Endpoint("GET", "/livez", _livez, "liveness: the process answers", response_type="text/plain", inline=True),
    Endpoint("GET", "/readyz", _readyz, "readiness: store reachable, scheduler running", response_type="text/plain"),
    Endpoint(
        "POST",
        "/-/reload",
        _reload,
        "reload the configuration (the old one keeps running if the new one is invalid)",
        Auth.BEARER_OR_LOOPBACK,
        EmptyBody,
        partial(validate_body, EmptyBody),
        response_schema=_OBJECT,
    ),
    _listing("/api/v1/incidents", _incidents, "list incidents, newest first", "incidents"),
    Endpoint(
        "GET",
        "/api/v1/incidents/{id}",
        _incident,
        "one incident with its transitions, actions and notifications",
        response_schema=_INCIDENT,
    ),
    _write("/api/v1/incidents/{id}/ack", _ack, "acknowledge an incident", _INCIDENT, CommentBody),
    _write("/api/v1/incidents/{id}/silence", _silence, "silence an incident's notifications", _INCIDENT, SilenceBody),
    _listing("/api/v1/actions", _actions, "list ledger actions, newest first", "actions"),
    _write("/api/v1/actions/{id}/approve", partial(_decide_by_api, True), "approve an action", _INCIDENT),
    _write("/api/v1/actions/{id}/deny", partial(_decide_by_api, False), "deny an action", _INCIDENT),
    _write("/api/v1/pause", partial(_set_paused, True), "kill switch on", _PAUSED),
    _write("/api/v1/resume", partial(_set_paused, False), "kill switch off", _PAUSED),
    Endpoint(
        "GET",
        "/api/v1/status",
        _status,
        "kill switch and version",
        response_schema={
            "type": "object",
            "required": ["paused", "version"],
            "properties": {"paused": {"type": "boolean"}, "version": {"type": "string"}},
        },
    ),
    _write(
        "/api/v1/ingest",
        _ingest,
        "push metric points and events (read by `push` sources); stored before the 202",
        _ACCEPTED,
        IngestRequest,
        validate_ingest,
        202,
    ),
    _write(
        "/api/v1/alertmanager",
        _alertmanager,
        "Alertmanager webhook receiver (version 4, read by `alertmanager` sources); stored before the 202",
        _ACCEPTED,
        AlertmanagerWebhook,
        validate_alertmanager,
        202,
    ),
    _write(
        "/api/v1/incidents/{id}/verdict",
        _verdict,
        "mark an incident useful or noise (the newest verdict counts)",
        _VERDICT,
        VerdictBody,
        status=201,
    ),
    _write(
        "/api/v1/verdicts/missed",
        _missed,
        "record a problem a check should have opened an incident for, between `from` and `to`",
        _VERDICT,
        MissedBody,
        status=201,
    ),
    Endpoint(
        "GET",
        "/api/v1/verdicts",
        _verdicts,
        "list verdicts, newest first",
        query=_VERDICT_QUERY,
        response_schema=_list_of("verdicts", _VERDICT),
    ),
    Endpoint(
        "GET",
        "/api/v1/effectiveness",
        _effectiveness,
        "per action type and target: share of runs that healed, median time to heal, escalations",
        query=(
            QueryParam(
                "since",
                {"type": "string", "pattern": r"^[0-9][0-9a-z.]*$", "default": DEFAULT_EFFECTIVENESS_WINDOW},
                "how far back, as a duration",
            ),
        ),
        response_schema={
            "type": "object",
            "required": ["since", "actions"],
            "properties": {"since": {"type": "number"}, "actions": {"type": "array", "items": _EFFECT}},
        },
    ),
    Endpoint(
        "GET",
        "/api/v1/cluster",
        _cluster,
        "the daemon replicas sharing this store, with their heartbeat ages",
        response_schema={
            "type": "object",
            "required": ["members"],
            "properties": {
                "members": {"type": "array", "items": _MEMBER},
                "replica": {"type": "string", "description": "the replica that answered"},
                "owned": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "the checks the answering replica runs now (holds the lease of)",
                },
            },
        },
    ),
    *_signed_link(
        "/verdict/{id}",
        (_verdict_page, "confirmation page of a signed verdict link (records nothing)"),
        (_verdict_by_link, "record the verdict of a signed verdict link"),
        QueryParam("verdict", {"type": "string", "enum": ["useful", "noise"]}, "the verdict", required=True),
    ),
    *_signed_link(
        "/decide/{id}",
        (_decide_page, "confirmation page of a signed approval link (decides nothing)"),
        (_decide, "take the decision of a signed approval link"),
        QueryParam("decision", {"type": "string", "enum": ["approve", "deny"]}, "the decision", required=True),
    ),
)
