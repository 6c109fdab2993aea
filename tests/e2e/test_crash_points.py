"""Crash-point test: the daemon is SIGKILLed right after each commit boundary of an incident's life, restarted,
and must end exactly like an uncrashed run — same final states and audit trail, one firing and one resolved
message for the receiver, the remediation executed once, nothing recorded as interrupted.

Both stores (SQLite, a real PostgreSQL), both modes (``auto``, ``approve``). The three cases that used to go
wrong are among the points: after the action's final commit (``action.finished``), between the saved handle
and the supervisor's go (``action.handle_saved``), and approve mode right after the claim
(``action.claimed``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.crash import Life, LifeEnd, describe, new_store_url

pytestmark = pytest.mark.slow

AUTO_POINTS = [
    "incident.pending",
    "incident.firing",
    "action.planned",
    "action.claimed",
    "action.handle_saved",
    "action.finished",
    "incident.resolved",
    "notification.sent",
]
APPROVE_POINTS = [*AUTO_POINTS[:3], "action.approved", *AUTO_POINTS[3:]]
CASES = [(mode, point) for mode, points in (("auto", AUTO_POINTS), ("approve", APPROVE_POINTS)) for point in points]
#: Runs at a time: each is a daemon that mostly sleeps between sub-second ticks, so they overlap well.
PARALLEL = 6


def _one(kind: str, mode: str, point: str | None, work: Path, postgres_url: str | None) -> LifeEnd:
    work.mkdir(parents=True)
    life = Life(work, new_store_url(kind, work, postgres_url), mode)
    try:
        return life.run(point)
    except AssertionError as exc:
        raise AssertionError(f"{kind}/{mode}/{point}: {exc}") from exc
    finally:
        life.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_killed_at_each_commit_boundary_ends_like_an_uncrashed_run(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    pg = request.getfixturevalue("postgres_url") if kind == "postgres" else None
    runs: list[tuple[str, str | None]] = [("auto", None), ("approve", None), *CASES]
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        futures = {
            (mode, point): pool.submit(_one, kind, mode, point, tmp_path / f"{mode}-{point or 'uncrashed'}", pg)
            for mode, point in runs
        }
    ends = {key: future.result() for key, future in futures.items()}

    for mode in ("auto", "approve"):
        reference = ends[(mode, None)]
        assert reference.final_state == "resolved"
        assert reference.states == ("pending", "firing", "remediating", "verifying", "resolved")
        assert reference.executions == 1
        assert reference.action_states == ("succeeded",)
        expected = {"firing": 1, "resolved": 1} | ({"approval": 1} if mode == "approve" else {})
        assert reference.messages == expected
        assert reference.deliveries == expected

    mismatches = {
        f"{mode}/{point}": describe(end)
        for (mode, point), end in ends.items()
        if point is not None and describe(end) != describe(ends[(mode, None)])
    }
    assert not mismatches, f"differs from the uncrashed run {describe(ends[('auto', None)])}: {mismatches}"
    # at-least-once delivery: a kill while a message was on the wire may repeat it, never under a new key
    repeated = {f"{m}/{p}": e.deliveries for (m, p), e in ends.items() if any(n > 2 for n in e.deliveries.values())}
    assert not repeated
