"""Routing: which receivers get a message, and how (grouping and repeat timing), plus the one place where
incident messages become outbox rows.

Why here and not in the incident state machine: the state machine decides *that* people must be told; who,
how often and in which bundle is notification policy (Alertmanager's routing tree), and keeping it in one
function means flap control, routes and silences apply to every message the same way.

A check's ``policy.notify`` receivers always get its messages (no grouping, no repeats unless a route for
that receiver says otherwise). ``routes`` are tried in order; the first whose matchers (``match``
labels are read as ``label="value"`` matchers) and ``severity`` all fit adds its receivers with its timing,
and stops the walk unless it says ``continue: true``.

>>> from aiops.config.notifications import RouteConfig
>>> routes = [RouteConfig.model_validate({"matchers": ["team=ml"], "receivers": ["slack"], "group_by": ["check"]}),
...           RouteConfig.model_validate({"severity": ["critical"], "receivers": ["pagerduty"]})]
>>> sorted(route(routes, ["webhook"], {"team": "ml", "severity": "critical", "check": "latency"}))
['slack', 'webhook']
>>> sorted(route(routes, [], {"team": "data", "severity": "critical"}))
['pagerduty']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from aiops.config.notifications import RouteConfig
from aiops.engine import flapping
from aiops.engine.silences import message_labels
from aiops.matchers import matches_all, parse_matchers
from aiops.store.records import FlapEpisode, Incident, JsonObject
from aiops.store.store import Store
from aiops.types import Message

log = structlog.get_logger("aiops.routing")

#: Events that may wait for their group; the others (approval, escalation) go out at once.
GROUPED_EVENTS = frozenset({"firing", "resolved"})


def outbox_row(
    notifier: str,
    incident_id: int,
    event: str,
    payload: JsonObject,
    now: float,
    route: JsonObject | None = None,
) -> dict[str, object]:
    """A new outbox row: pending, due now, ungrouped; ``route`` is the timing of the route that chose it."""
    return {
        "notifier": notifier,
        "dedup_key": str(payload["dedup_key"]),
        "incident_id": incident_id,
        "event": event,
        "payload": payload,
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "group_key": None,
        "route": route,
    }


def route_matches(r: RouteConfig, labels: Mapping[str, str]) -> bool:
    if r.severity and labels.get("severity") not in r.severity:
        return False
    return matches_all(parse_matchers(r.matchers), labels)


def route(
    routes: Sequence[RouteConfig], notify: Sequence[str], labels: Mapping[str, str]
) -> dict[str, tuple[int, RouteConfig] | None]:
    """receiver -> (route index, route) or None (a plain ``policy.notify`` receiver)."""
    out: dict[str, tuple[int, RouteConfig] | None] = dict.fromkeys(notify)
    for i, r in enumerate(routes):
        if not route_matches(r, labels):
            continue
        for receiver in r.receivers:
            out[receiver] = (i, r)
        if not r.continue_:
            break
    return out


def group_key(index: int, r: RouteConfig, labels: Mapping[str, str]) -> str | None:
    if not r.group_by:
        return None
    parts = ",".join(f"{name}={labels.get(name, '')}" for name in r.group_by)
    return f"route{index}:{parts}"[:300]


def enqueue_message(
    store: Store,
    settings: Any,
    notify: Sequence[str],
    incident: Incident,
    message: Message,
    payload: dict[str, Any],
    now: float,
) -> None:
    """Queue ``message`` (already rendered to ``payload``) for every receiver it routes to, after flap
    control; every row is written before anything is sent, so a crash loses nothing."""
    routes: Sequence[RouteConfig] = getattr(settings, "routes", ())
    labels = message_labels(payload)
    targets = route(routes, notify, labels)
    known = getattr(settings, "notifiers", None)
    if known is not None:
        for name in [n for n in targets if n not in known]:
            log.error("route names an unknown notifier; skipped", notifier=name, known=sorted(known))
            targets.pop(name)
    if not targets:
        return
    flap_cfg = getattr(settings, "flapping", None)
    decision = (
        flapping.assess(store, flap_cfg, incident, message.event, now)
        if flap_cfg is not None
        else flapping.FlapDecision(flapping.SEND)
    )
    if decision.kind == flapping.ANNOUNCE:
        payload = flapping_payload(payload, decision.reason, flap_cfg.window if flap_cfg else 0.0, now)
        flapping.start_episode(store, incident, decision.opens, sorted(targets), payload, now)
        log.warning("incident is flapping; further messages held", incident=incident.id, reason=decision.reason)
    for receiver, routed in targets.items():
        values = outbox_row(receiver, incident.id, str(payload["event"]), payload, now)
        if routed is not None:
            index, r = routed
            values["route"] = r.timing()
            if values["event"] in GROUPED_EVENTS and decision.kind == flapping.SEND:
                values["group_key"] = group_key(index, r, labels)
        if decision.kind == flapping.HOLD:
            values.update(state="held", last_error=decision.reason)
        store.enqueue_notification(values)


def flapping_payload(payload: Mapping[str, Any], reason: str, window: float, now: float) -> dict[str, Any]:
    """The one message sent for a flapping incident, derived from the firing message it replaces."""
    inc = dict(payload["incident"])
    out = dict(payload)
    out.update(
        event="flapping",
        title=f"[FLAPPING] {inc.get('check')}: {inc.get('summary')}",
        text=(
            f"{reason}. Further openings and resolutions are held; you will get one message when it has been "
            f"quiet for {window:g}s."
        ),
        dedup_key=f"{inc.get('fingerprint')}:flapping:{int(now)}",
    )
    details = dict(out.get("details") or {})
    details["flapping"] = {"reason": reason, "since": now}
    out["details"] = details
    return out


def flap_closed_payload(flap: FlapEpisode, now: float) -> dict[str, Any]:
    """The message that ends a flapping episode (sent as ``resolved`` so pagers close their alert)."""
    out: dict[str, Any] = dict(flap.payload)
    inc = dict(out["incident"])
    inc["state"] = "resolved"
    out.update(
        event="resolved",
        incident=inc,
        title=f"[RESOLVED] {inc.get('check')}: stopped flapping",
        text=f"no new opening since {flap.last_at:.0f} ({flap.opens} openings while flapping)",
        dedup_key=f"{out['dedup_key']}:resolved",
    )
    return out
