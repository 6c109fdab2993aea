"""Flap control: an incident that keeps opening and resolving is announced once as ``flapping`` and its
further firing/resolved messages are held until it has been quiet for the whole window.

Why: a metric oscillating around a threshold opens and resolves an incident every few minutes; each cycle
would page someone twice (keep#4766: one alert fired 23 696 times). Counting openings per fingerprint in a
sliding window is enough to see it (Nagios' flap detection does the same with state changes), and because
the count lives in the store, a restart neither forgets a flap nor re-announces it.

The decision is pure bookkeeping on the store; :mod:`aiops.engine.routing` turns it into outbox rows and
:mod:`aiops.engine.outbox` closes episodes that went quiet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiops.config.notifications import FlappingConfig
from aiops.store.records import FlapEpisode, Incident
from aiops.store.store import Store

SEND, HOLD, ANNOUNCE = "send", "hold", "announce"


@dataclass(frozen=True)
class FlapDecision:
    """``send`` as usual, ``hold`` (record, do not send), or ``announce`` (send one flapping message instead)."""

    kind: str
    reason: str = ""
    opens: int = 0


def assess(store: Store, cfg: FlappingConfig, incident: Incident, event: str, now: float) -> FlapDecision:
    """What to do with a message of ``event`` about ``incident`` given how often its fingerprint opened."""
    if not cfg.enabled or event not in ("firing", "resolved"):
        return FlapDecision(SEND)
    fp = incident.fingerprint
    flap = store.get_flap(fp)
    active = flap is not None and flap.ended_at is None
    if event == "resolved":
        if active:
            return FlapDecision(HOLD, f"flapping since {flap.started_at:.0f}: resolution held" if flap else "")
        return FlapDecision(SEND)
    if active and flap is not None:
        opens = flap.opens + 1
        store.save_flap(fp, {"last_at": now, "opens": opens})
        return FlapDecision(HOLD, f"flapping: opened {opens} times since {flap.started_at:.0f}", opens)
    opens = store.count_opened(fp, now - cfg.window)
    if opens >= cfg.threshold:
        return FlapDecision(ANNOUNCE, f"opened {opens} times within {cfg.window:g}s", opens)
    return FlapDecision(SEND)


def start_episode(
    store: Store, incident: Incident, opens: int, receivers: list[str], payload: dict[str, Any], now: float
) -> None:
    store.save_flap(
        incident.fingerprint,
        {
            "check_name": incident.check_name,
            "started_at": now,
            "last_at": now,
            "ended_at": None,
            "opens": opens,
            "receivers": receivers,
            "payload": payload,
        },
    )


def quiet_episodes(store: Store, cfg: FlappingConfig, now: float) -> list[FlapEpisode]:
    """Active episodes that saw no opening for a whole window and have no open incident: ready to close."""
    out = []
    for flap in store.active_flaps():
        if now - flap.last_at < cfg.window:
            continue
        if store.open_incident(flap.fingerprint) is not None:
            continue
        out.append(flap)
    return out
