"""One transaction per decision, and reconciliation of what an older release's separate commits left behind.

The store's write is made to fail for real (the outbox table is renamed away under the engine's feet, so
the INSERT of the firing message fails inside the database): the incident the same decision created must not
survive it, which is why a ``firing`` incident without its firing message cannot exist.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from aiops.errors import StoreError
from aiops.store import schema
from tests.unit.test_engine import Harness, policy
from tests.unit.test_engine import _plugins as _plugins  # autouse: test plugins registered


def test_firing_without_its_message_cannot_be_committed(tmp_path: Path) -> None:
    h = Harness(tmp_path, policy("notify: [capture]"))
    with h.store.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE aiops_outbox RENAME TO aiops_outbox_away"))
    with pytest.raises(StoreError):
        h.tick(500)  # the decision opens the incident, then fails to queue its firing message
    assert h.store.list_incidents() == []  # rolled back with it: no firing incident without its message
    with h.store.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE aiops_outbox_away RENAME TO aiops_outbox"))
    h.tick(500)
    assert h.incident().state == "firing"
    assert [n.event for n in h.store.list_notifications()] == ["firing"]


def test_a_failed_decision_leaves_no_ledger_row(tmp_path: Path) -> None:
    """The ladder's step (ledger row + transition to remediating) is one commit as well."""
    h = Harness(tmp_path, policy("notify: [capture]\nactions: [{type: recording}]"))
    with h.store.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE aiops_transitions RENAME TO aiops_transitions_away"))
    with pytest.raises(StoreError):
        h.tick(500)
    with h.store.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE aiops_transitions_away RENAME TO aiops_transitions"))
    assert h.store.list_incidents() == [] and h.store.list_actions() == []


def test_reconcile_applies_a_finished_action_an_old_release_left_unapplied(tmp_path: Path) -> None:
    """Killed between "action succeeded" and the incident's transition (two commits before): the incident
    stayed remediating for ever. Reconciliation moves it on as the missing commit would have."""
    h = Harness(tmp_path, policy("notify: [capture]\nverify: {window: 60s}\nactions: [{type: recording}]"))
    h.tick(500)
    inc = h.incident()
    action = h.store.list_actions()[0]
    assert inc.state == "verifying"
    # rewind the incident to what the old release could leave: remediating, the action's finish not applied
    with h.store.engine.begin() as conn:
        conn.execute(
            sa.delete(schema.transitions).where(
                schema.transitions.c.incident_id == inc.id, schema.transitions.c.to_state == "verifying"
            )
        )
        conn.execute(sa.update(schema.incidents).where(schema.incidents.c.id == inc.id).values(state="remediating"))
    assert h.incidents.reconcile() == 1
    assert h.incident().state == "verifying"
    assert h.states() == ["firing", "remediating", "verifying"]
    assert h.incidents.reconcile() == 0  # nothing left to repair
    assert action.state == "succeeded"


def test_reconcile_moves_a_firing_incident_whose_approved_action_runs(tmp_path: Path) -> None:
    h = Harness(tmp_path, policy("notify: [capture]\nactions: [{type: recording, mode: approve}]"))
    h.tick(500)
    action = h.store.list_actions()[0]
    assert h.store.decide_approval(action.id, True, "alice", h.clock.now())
    # the old release's claim committed alone; the incident's move to remediating never happened
    assert h.store.claim_action(action.id, "dead:1:1.0", 0.0, h.clock.now(), from_states=["pending"])
    assert h.incident().state == "firing"
    assert h.incidents.reconcile() == 1
    assert h.incident().state == "remediating"
