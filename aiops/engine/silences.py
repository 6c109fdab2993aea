"""Silences: label matchers with an expiry that keep matching notifications from being sent.

Why matchers and not incident ids: a silence must also cover the incidents that have not opened yet (a
planned maintenance, a known-noisy model), exactly like Alertmanager's silences. The matcher syntax is
Alertmanager's, so people type what they already know.

>>> m = parse_matcher('severity=~"warn.*"')
>>> m, m.matches({"severity": "warning"}), m.matches({"severity": "critical"})
(Matcher(name='severity', op='=~', value='warn.*'), True, False)
>>> matches_all([parse_matcher("check=latency"), parse_matcher("env!=dev")], {"check": "latency", "env": "prod"})
True
>>> parse_matcher("no operator")
Traceback (most recent call last):
...
ValueError: matcher 'no operator' must look like name=value, name!=value, name=~regex or name!~regex
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


@dataclass(frozen=True)
class Matcher:
    """One ``name op value`` test; a missing label counts as the empty string (Alertmanager's rule)."""

    name: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = str(labels.get(self.name, ""))
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        hit = re.fullmatch(self.value, actual) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value}"


def parse_matcher(text: str) -> Matcher:
    """``name=value``, ``name!=value``, ``name=~regex`` or ``name!~regex``; the value may be quoted."""
    m = _MATCHER.match(text)
    if not m:
        raise ValueError(f"matcher {text!r} must look like name=value, name!=value, name=~regex or name!~regex")
    name, op, value = m.groups()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    if op in ("=~", "!~"):
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"matcher {text!r}: invalid regular expression: {exc}") from None
    return Matcher(name, op, value)


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


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
    store_rows: Sequence[Mapping[str, Any]], config_silences: Sequence[Any], now: float
) -> list[ActiveSilence]:
    """Silences in force at ``now``: the stored ones (``aiops silence --match``) and the config's."""
    out: list[ActiveSilence] = []
    for row in store_rows:
        if float(row["starts_at"]) <= now < float(row["ends_at"]):
            out.append(
                ActiveSilence(
                    f"db:{row['id']}",
                    tuple(parse_matcher(m) for m in row["matchers"]),
                    float(row["ends_at"]),
                    str(row["comment"]),
                )
            )
    for i, cfg in enumerate(config_silences):
        if cfg.until is None or now < cfg.until:
            out.append(
                ActiveSilence(f"config:{i}", tuple(parse_matcher(m) for m in cfg.matchers), cfg.until, cfg.comment)
            )
    return out


def silenced_by(silences: Iterable[ActiveSilence], labels: Mapping[str, str]) -> ActiveSilence | None:
    for silence in silences:
        if matches_all(silence.matchers, labels):
            return silence
    return None


def silence_command(
    store: Any, matchers: list[str], duration: str, comment: str, list_: bool, expire: int | None
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
            parsed = [str(parse_matcher(m)) for m in matchers]
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
        out.append(f"silence {row['id']} created: {' '.join(parsed)} for {duration}")
    if list_:
        rows = store.list_silences(active_at=now)
        if not rows:
            out.append("no active silences")
        for row in rows:
            left = float(row["ends_at"]) - now
            out.append(
                f"{row['id']:>4}  {' '.join(row['matchers'])}  ends in {left / 60:.0f}m  by {row['created_by']}"
                + (f"  ({row['comment']})" if row["comment"] else "")
            )
    return out
