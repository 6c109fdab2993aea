"""Operators' verdicts in the store: was an incident useful, was it noise, or did aiops miss one?

Why a table of its own, written only by people: the verdicts are the labels that tell the detectors'
thresholds apart (``aiops backtest`` / ``aiops tune`` read them through :func:`verdicts_for_check`) and the
feedback an on-call team gives on every page. Rows are only ever inserted: a person who changes their mind
adds a newer verdict, the newest one of an incident is the one that counts, and the history stays auditable
(and ``aiops_incident_verdicts_total`` stays a true counter).

A ``missed`` verdict has no incident to hang on (none was opened): it names the check and the time window in
which a finding should have opened one. Verdicts on incidents carry the incident's window too (opened ->
resolved, or last seen while still open), so a backtest reads every label as "this check, this window".
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

import sqlalchemy as sa

from aiops.errors import AiopsError
from aiops.store import schema as t
from aiops.store.store import Store

MAX_COMMENT: Final = 2000
MAX_ACTOR: Final = 100
MAX_CHECK: Final = 100


class VerdictKind(enum.StrEnum):
    USEFUL = "useful"  # the incident was worth a person's attention
    NOISE = "noise"  # it should not have opened
    MISSED = "missed"  # something should have opened an incident and nothing did

    @property
    def positive(self) -> bool:
        """Whether an incident belongs in the verdict's window (a backtest label's truth)."""
        return self is not VerdictKind.NOISE

    @classmethod
    def parse(cls, value: str, *, allowed: Iterable[VerdictKind] | None = None) -> VerdictKind:
        """The kind named by ``value``; an :class:`AiopsError` (reason ``invalid``) listing the allowed ones."""
        choices = list(allowed) if allowed is not None else list(cls)
        for kind in choices:
            if value == kind.value:
                return kind
        names = ", ".join(k.value for k in choices)
        raise AiopsError(f"verdict must be one of {names}, not {value[:40]!r}", reason="invalid")


INCIDENT_VERDICTS: Final = (VerdictKind.USEFUL, VerdictKind.NOISE)


@dataclass(frozen=True)
class Verdict:
    """One person's judgement. ``incident_id`` and ``fingerprint`` are None for a ``missed`` verdict."""

    id: int
    verdict: VerdictKind
    check: str
    incident_id: int | None
    fingerprint: str | None
    starts_at: float
    ends_at: float
    comment: str
    actor: str
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["verdict"] = self.verdict.value
        return out


def _record(row: Mapping[Any, Any]) -> Verdict:
    return Verdict(
        id=int(row["id"]),
        verdict=VerdictKind(row["verdict"]),
        check=str(row["check_name"]),
        incident_id=None if row["incident_id"] is None else int(row["incident_id"]),
        fingerprint=None if row["fingerprint"] is None else str(row["fingerprint"]),
        starts_at=float(row["starts_at"]),
        ends_at=float(row["ends_at"]),
        comment=str(row["comment"]),
        actor=str(row["actor"]),
        created_at=float(row["created_at"]),
    )


def _clean_text(value: str, name: str, limit: int, *, required: bool = False) -> str:
    text = value.strip()
    if required and not text:
        raise AiopsError(f"{name} must not be empty", reason="invalid")
    if len(text) > limit:
        raise AiopsError(f"{name} is longer than {limit} characters", reason="invalid")
    if "\x00" in text:
        raise AiopsError(f"{name} contains a NUL character", reason="invalid")
    return text


def _insert(store: Store, values: Mapping[str, Any]) -> Verdict:
    with store.tx() as conn:
        result = conn.execute(sa.insert(t.verdicts).values(**values))
        key = result.inserted_primary_key
        assert key is not None
        row = conn.execute(sa.select(t.verdicts).where(t.verdicts.c.id == int(key[0]))).one()
    return _record(row._mapping)


def mark_incident(
    store: Store, incident_id: int, verdict: VerdictKind | str, *, actor: str, comment: str = "", now: float
) -> Verdict:
    """Record ``useful`` or ``noise`` for an incident (open or resolved); returns the stored verdict.

    Saying the same thing again (same verdict, actor and comment as the incident's newest verdict: a double
    click on a link, a retried request) returns that verdict instead of counting it twice.

    Raises :class:`AiopsError`: ``not_found`` for an unknown incident, ``invalid`` for ``missed`` (which
    has no incident: use :func:`mark_missed`) or an over-long comment.
    """
    kind = VerdictKind.parse(str(verdict), allowed=INCIDENT_VERDICTS)
    text = _clean_text(comment, "comment", MAX_COMMENT)
    who = _clean_text(actor, "actor", MAX_ACTOR, required=True)
    inc = t.incidents
    with store.tx() as conn:
        row = conn.execute(
            sa.select(inc.c.check_name, inc.c.fingerprint, inc.c.opened_at, inc.c.resolved_at, inc.c.last_seen_at)
            .where(inc.c.id == incident_id)
        ).first()
    if row is None:
        raise AiopsError(f"no incident {incident_id}", reason="not_found")
    previous = verdicts_of_incidents(store, [incident_id]).get(incident_id)
    if previous and (previous[-1].verdict, previous[-1].actor, previous[-1].comment) == (kind, who, text):
        return previous[-1]
    ends = row.resolved_at if row.resolved_at is not None else max(float(row.last_seen_at), float(row.opened_at))
    return _insert(
        store,
        {
            "incident_id": incident_id,
            "check_name": row.check_name,
            "fingerprint": row.fingerprint,
            "verdict": kind.value,
            "starts_at": float(row.opened_at),
            "ends_at": float(ends),
            "comment": text,
            "actor": who,
            "created_at": now,
        },
    )


def mark_missed(
    store: Store, check: str, starts_at: float, ends_at: float, *, actor: str, comment: str = "", now: float
) -> Verdict:
    """Record that ``check`` should have opened an incident between ``starts_at`` and ``ends_at``.

    The caller checks that the check exists (the store does not know the configuration); here the window
    must be a real one, ending no later than ``now``: a verdict is about what already happened.
    """
    name = _clean_text(check, "check", MAX_CHECK, required=True)
    text = _clean_text(comment, "comment", MAX_COMMENT)
    who = _clean_text(actor, "actor", MAX_ACTOR, required=True)
    if not ends_at > starts_at:
        raise AiopsError("the window's end (to) must be after its start (from)", reason="invalid")
    if starts_at > now:
        raise AiopsError("the window starts in the future; a missed verdict is about the past", reason="invalid")
    return _insert(
        store,
        {
            "incident_id": None,
            "check_name": name,
            "fingerprint": None,
            "verdict": VerdictKind.MISSED.value,
            "starts_at": float(starts_at),
            "ends_at": float(ends_at),
            "comment": text,
            "actor": who,
            "created_at": now,
        },
    )


def verdicts_of_incidents(store: Store, incident_ids: Iterable[int]) -> dict[int, list[Verdict]]:
    """Every verdict of each incident, oldest first (the last one counts); incidents without any are absent."""
    ids = sorted({int(i) for i in incident_ids})
    out: dict[int, list[Verdict]] = {}
    if not ids:
        return out
    query = sa.select(t.verdicts).where(t.verdicts.c.incident_id.in_(ids)).order_by(t.verdicts.c.id)
    with store.tx() as conn:
        for row in conn.execute(query):
            record = _record(row._mapping)
            assert record.incident_id is not None
            out.setdefault(record.incident_id, []).append(record)
    return out


def list_verdicts(
    store: Store, *, check: str | None = None, verdict: VerdictKind | None = None, limit: int = 100
) -> list[Verdict]:
    """Verdicts newest first, optionally of one check and one kind."""
    query = sa.select(t.verdicts).order_by(t.verdicts.c.id.desc()).limit(limit)
    if check is not None:
        query = query.where(t.verdicts.c.check_name == check)
    if verdict is not None:
        query = query.where(t.verdicts.c.verdict == verdict.value)
    with store.tx() as conn:
        return [_record(r._mapping) for r in conn.execute(query)]


def verdicts_for_check(store: Store, check: str, since: float, until: float) -> list[Verdict]:
    """The labels of one check for a backtest over ``[since, until]``: the verdicts whose window overlaps it,
    oldest window first, with only the newest verdict of each incident (a changed mind replaces the old
    label) and every ``missed`` window."""
    v = t.verdicts
    query = (
        sa.select(v)
        .where(v.c.check_name == check, v.c.starts_at <= until, v.c.ends_at >= since)
        .order_by(v.c.id)
    )
    with store.tx() as conn:
        records = [_record(r._mapping) for r in conn.execute(query)]
    newest: dict[int, Verdict] = {}
    missed: list[Verdict] = []
    for record in records:
        if record.incident_id is None:
            missed.append(record)
        else:
            newest[record.incident_id] = record  # ordered by id: the last one wins
    return sorted([*newest.values(), *missed], key=lambda r: (r.starts_at, r.id))


def verdict_counts(store: Store) -> dict[tuple[str, str], int]:
    """How many verdicts were ever recorded, by (check, verdict): what ``aiops_incident_verdicts_total`` says."""
    v = t.verdicts
    query = sa.select(v.c.check_name, v.c.verdict, sa.func.count()).group_by(v.c.check_name, v.c.verdict)
    with store.tx() as conn:
        return {(str(check), str(kind)): int(n) for check, kind, n in conn.execute(query)}
