"""Typed records the store returns, instead of raw rows.

Why: a row is ``dict[str, Any]`` — every reader re-coerces (``int(row["id"] or 0)``), a typo in a key is a
runtime ``KeyError`` and a state is a bare string. A frozen record with enum states is checked by mypy and
cannot be mutated behind the store's back. ``to_json()`` gives exactly the JSON the API and the CLI always
served for the row.

Only the audit trail is converted so far; incidents, actions and outbox messages follow the same pattern.

>>> t = Transition(1, 7, 100.0, None, IncidentState.FIRING, "detector:threshold", "v is high", {})
>>> t.to_state is IncidentState.FIRING, t.to_json()["to_state"]
(True, 'firing')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aiops.types import IncidentState, json_safe


@dataclass(frozen=True)
class Transition:
    """One row of an incident's audit trail: who or what moved it, from where to where, why, with what."""

    id: int
    incident_id: int
    at: float
    from_state: IncidentState | None
    to_state: IncidentState
    actor: str
    reason: str
    evidence: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Mapping[str, object]) -> Transition:
        evidence = row.get("evidence")
        from_state = row.get("from_state")
        return cls(
            id=_int(row["id"]),
            incident_id=_int(row["incident_id"]),
            at=_float(row["at"]),
            from_state=IncidentState(str(from_state)) if from_state is not None else None,
            to_state=IncidentState(str(row["to_state"])),
            actor=str(row["actor"]),
            reason=str(row["reason"]),
            evidence=dict(evidence) if isinstance(evidence, Mapping) else {},
        )

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = json_safe(
            {
                "id": self.id,
                "incident_id": self.incident_id,
                "at": self.at,
                "from_state": self.from_state.value if self.from_state is not None else None,
                "to_state": self.to_state.value,
                "actor": self.actor,
                "reason": self.reason,
                "evidence": self.evidence,
            }
        )
        return out


def _int(value: object) -> int:
    if isinstance(value, int | float | str):
        return int(value)
    raise TypeError(f"expected a number, got {value!r}")


def _float(value: object) -> float:
    if isinstance(value, int | float | str):
        return float(value)
    raise TypeError(f"expected a number, got {value!r}")
