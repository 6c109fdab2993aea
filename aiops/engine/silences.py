"""Silences: label matchers with an expiry that keep matching notifications from being sent.

Why matchers and not incident ids: a silence must also cover the incidents that have not opened yet (a
planned maintenance, a known-noisy model), exactly like Alertmanager's silences. The matchers are
:mod:`aiops.matchers` (Alertmanager's grammar, shared with routes and push filters), so people type what
they already know.

>>> silenced_by([ActiveSilence("config:0", parse_matchers(['{env="prod", check=~"lat.*"}']), None, "")],
...             {"check": "latency", "env": "prod"}).id
'config:0'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiops.config.notifications import SilenceConfig
from aiops.matchers import Matcher, matches_all, normalise, parse_matchers
from aiops.store.records import Silence
from aiops.store.store import Store


def message_labels(payload: Mapping[str, Any]) -> dict[str, str]:
    """The labels matchers and routes see for an outbox payload: the incident's labels plus ``check``,
    ``alertname`` (= check), ``severity``, ``event``, ``state`` and ``fingerprint``."""
    inc = payload.get("incident") or {}
    labels = {str(k): str(v) for k, v in dict(inc.get("labels") or {}).items()}
    labels.update(
        {
            "check": str(inc.get("check", "")),
            "alertname": str(inc.get("check", "")),
            "severity": str(inc.get("severity", "")),
            "state": str(inc.get("state", "")),
            "fingerprint": str(inc.get("fingerprint", "")),
            "event": str(payload.get("event", "")),
        }
    )
    return labels


@dataclass(frozen=True)
class ActiveSilence:
    id: str  # "db:3" or "config:0"
    matchers: tuple[Matcher, ...]
    ends_at: float | None
    comment: str


def active_silences(
    stored: Sequence[Silence], config_silences: Sequence[SilenceConfig], now: float
) -> list[ActiveSilence]:
    """Silences in force at ``now``: the stored ones (``aiops silence --match``) and the config's."""
    out: list[ActiveSilence] = []
    for silence in stored:
        if silence.active_at(now):
            out.append(
                ActiveSilence(
                    f"db:{silence.id}", parse_matchers(list(silence.matchers)), silence.ends_at, silence.comment
                )
            )
    for i, cfg in enumerate(config_silences):
        if cfg.until is None or now < cfg.until:
            out.append(ActiveSilence(f"config:{i}", parse_matchers(cfg.matchers), cfg.until, cfg.comment))
    return out


def silenced_by(silences: Iterable[ActiveSilence], labels: Mapping[str, str]) -> ActiveSilence | None:
    for silence in silences:
        if matches_all(silence.matchers, labels):
            return silence
    return None


def silence_command(
    store: Store, matchers: list[str], duration: str, comment: str, list_: bool, expire: int | None
) -> list[str]:
    """What ``aiops silence --match/--list/--expire`` does, on the store directly (the daemon re-reads
    silences on every outbox tick, so this works whether or not it is running). Returns the lines to print."""
    import getpass
    import time

    from aiops.durations import parse_duration
    from aiops.errors import AiopsError

    now = time.time()
    out: list[str] = []
    if expire is not None:
        if not store.expire_silence(expire, now):
            raise AiopsError(f"no active silence {expire}", reason="not_found")
        out.append(f"silence {expire} expired")
    if matchers:
        try:
            parsed = normalise(matchers)
            seconds = parse_duration(duration)
        except ValueError as exc:
            raise AiopsError(str(exc)) from None
        row = store.add_silence(
            {
                "matchers": parsed,
                "starts_at": now,
                "ends_at": now + seconds,
                "created_by": getpass.getuser(),
                "comment": comment,
                "created_at": now,
            }
        )
        out.append(f"silence {row.id} created: {' '.join(parsed)} for {duration}")
    if list_:
        rows = store.list_silences(active_at=now)
        if not rows:
            out.append("no active silences")
        for silence in rows:
            left = silence.ends_at - now
            out.append(
                f"{silence.id:>4}  {' '.join(silence.matchers)}  ends in {left / 60:.0f}m  by {silence.created_by}"
                + (f"  ({silence.comment})" if silence.comment else "")
            )
    return out
