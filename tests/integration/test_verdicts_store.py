"""Verdicts and the remediation history on SQLite *and* a real PostgreSQL: the same records and the same
effectiveness figures from both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aiops.effectiveness import effectiveness
from aiops.errors import AiopsError
from aiops.store.store import Store
from aiops.store.verdicts import (
    VerdictKind,
    list_verdicts,
    mark_incident,
    mark_missed,
    verdict_counts,
    verdicts_for_check,
    verdicts_of_incidents,
)
from tests.integration.test_store import _incident
from tests.servers import create_database


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/store.db"
    else:
        url = create_database(request.getfixturevalue("postgres_url"))
    s = Store(url)
    s.migrate()
    yield s
    s.close()


def test_verdicts_are_kept_with_their_window_and_the_newest_counts(store: Store) -> None:
    first = _incident(store, "fp1", now=100.0)
    store.update_incident(first.id, {"last_seen_at": 160.0, "resolved_at": 180.0}, now=180.0)
    second = _incident(store, "fp2", now=1000.0)  # still open: its window ends when it was last seen
    noise = mark_incident(store, first.id, "noise", actor="ana", comment="flaky", now=200.0)
    assert (noise.check, noise.fingerprint, noise.starts_at, noise.ends_at) == ("c", "fp1", 100.0, 180.0)
    mark_incident(store, first.id, VerdictKind.USEFUL, actor="bo", now=300.0)  # a changed mind
    again = mark_incident(store, first.id, "useful", actor="bo", now=301.0)  # said twice: counted once
    assert again.created_at == 300.0
    mark_incident(store, second.id, "noise", actor="ana", now=1001.0)
    missed = mark_missed(store, "c", 500.0, 560.0, actor="ana", comment="saw it on the dashboard", now=600.0)
    assert missed.incident_id is None and missed.verdict is VerdictKind.MISSED

    history = verdicts_of_incidents(store, [first.id, second.id, 999])
    assert [v.verdict for v in history[first.id]] == [VerdictKind.NOISE, VerdictKind.USEFUL]
    assert 999 not in history
    labels = verdicts_for_check(store, "c", 0.0, 2000.0)
    assert [(v.verdict.value, v.starts_at) for v in labels] == [("useful", 100.0), ("missed", 500.0), ("noise", 1000.0)]
    assert [v.verdict.value for v in verdicts_for_check(store, "c", 170.0, 510.0)] == ["useful", "missed"]
    assert verdicts_for_check(store, "c", 2000.0, 3000.0) == []
    assert verdicts_for_check(store, "other", 0.0, 2000.0) == []
    assert verdict_counts(store) == {("c", "noise"): 2, ("c", "useful"): 1, ("c", "missed"): 1}
    assert [v.id for v in list_verdicts(store, verdict=VerdictKind.NOISE)] == [3, 1]
    assert list_verdicts(store, check="c", limit=1)[0].to_dict()["verdict"] == "missed"


@pytest.mark.parametrize(
    ("call", "reason", "text"),
    [
        (lambda s: mark_incident(s, 42, "noise", actor="a", now=1.0), "not_found", "no incident 42"),
        (lambda s: mark_incident(s, 1, "missed", actor="a", now=1.0), "invalid", "one of useful, noise"),
        (lambda s: mark_incident(s, 1, "noise", actor="a", comment="x" * 2001, now=1.0), "invalid", "comment"),
        (lambda s: mark_incident(s, 1, "noise", actor=" ", now=1.0), "invalid", "actor"),
        (lambda s: mark_missed(s, "c", 10.0, 10.0, actor="a", now=20.0), "invalid", "must be after"),
        (lambda s: mark_missed(s, "c", 30.0, 40.0, actor="a", now=20.0), "invalid", "future"),
        (lambda s: mark_missed(s, "", 1.0, 2.0, actor="a", now=20.0), "invalid", "check"),
    ],
    ids=["unknown-incident", "missed-on-incident", "long-comment", "no-actor", "empty-window", "future", "no-check"],
)
def test_bad_verdicts_are_refused_with_a_reason(store: Store, call, reason: str, text: str) -> None:  # type: ignore[no-untyped-def]
    _incident(store)
    with pytest.raises(AiopsError) as refused:
        call(store)
    assert refused.value.reason == reason and text in str(refused.value)
    assert verdict_counts(store) == {}


def test_effectiveness_reads_the_ledger_and_the_trail_alike_on_both_stores(store: Store) -> None:
    row = _incident(store, now=100.0)
    incident_id = row.id
    healed = store.create_action(
        {
            "idempotency_key": "k1", "incident_id": incident_id, "check_name": "c", "rung": 0,
            "action_type": "restart", "action_label": "restart", "mode": "auto", "target": "svc",
            "plan": {}, "state": "succeeded", "runs": 1, "created_at": 110.0, "updated_at": 112.0,
            "started_at": 110.0, "finished_at": 112.0,
        }
    )
    store.update_incident(incident_id, {}, transition=("remediating", "policy", "run", {"action_id": healed.id}),
                          now=110.0)
    store.update_incident(incident_id, {}, transition=("verifying", "action", "ok", {"action_id": healed.id}),
                          now=112.0)
    store.update_incident(incident_id, {"resolved_at": 155.0}, transition=("resolved", "verifier", "healed", {}),
                          now=155.0)
    (row_effect,) = effectiveness(store, since=0.0)
    assert (row_effect.action, row_effect.target, row_effect.runs, row_effect.healed) == ("restart", "svc", 1, 1)
    assert row_effect.heal_ratio == 1.0 and row_effect.median_heal_seconds == 45.0
    assert effectiveness(store, since=111.0) == []
