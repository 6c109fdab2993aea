"""The notification pipeline on a fake clock and a real SQLite store: per-receiver order, rate limits,
grouping (group_wait/group_interval), repeats with escalating back-off, silences with matchers and expiry,
resolve messages, and flap control through the real incident state machine."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aiops.config.loader import parse_config
from aiops.engine.checks import CheckRunner
from aiops.engine.incidents import IncidentManager
from aiops.engine.messages import build_message
from aiops.engine.outbox import OutboxDispatcher
from aiops.engine.routing import enqueue_message
from aiops.engine.runtime import Runtime, build_runtime
from aiops.messages import message_to_payload
from aiops.plugins import Notifier
from aiops.store.records import Incident
from aiops.store.store import Store
from aiops.testing import CapturingNotifier, FakeClock, ScriptedSource, register_test_plugins, unregister_test_plugins
from aiops.types import fingerprint

NOTIFIERS = """
notifiers:
  chat: {type: capture}
  pager: {type: capture}
"""


@pytest.fixture(autouse=True)
def _plugins() -> Iterator[None]:
    register_test_plugins()
    ScriptedSource.reset()
    yield
    unregister_test_plugins()


class Pipeline:
    """A store, a runtime with two capturing receivers, an outbox dispatcher and a fake clock."""

    def __init__(self, tmp_path: Path, extra: str = "") -> None:
        self.config = parse_config(NOTIFIERS + extra, "test.yaml", env={})
        self.runtime: Runtime = build_runtime(self.config)
        self.store = Store(f"sqlite:///{tmp_path}/aiops.db")
        self.store.migrate()
        self.clock = FakeClock()
        self.outbox = OutboxDispatcher(self.store, lambda: self.runtime, self.clock.now)

    def incident(self, check: str = "latency", severity: str = "warning", **labels: str) -> Incident:
        now = self.clock.now()
        return self.store.create_incident(
            {
                "fingerprint": fingerprint(check, labels),
                "check_name": check,
                "labels": labels,
                "state": "firing",
                "severity": severity,
                "kind": "detector:threshold",
                "summary": f"{check} is high",
                "evidence": {},
                "opened_at": now,
                "updated_at": now,
                "firing_at": now,
                "last_seen_at": now,
                "rung": 0,
                "attempts": 0,
                "healthy_ticks": 0,
                "notified_firing": True,
            },
            actor="test",
            reason="test",
        )

    def notify(self, row: Incident, event: str, notify: tuple[str, ...] = ("chat",)) -> None:
        if event == "resolved":
            row = self.store.update_incident(
                row.id,
                {"resolved_at": self.clock.now()},
                transition=("resolved", "test", "ok", {}),
                now=self.clock.now(),
            )
        msg = build_message(event, row, f"{event} text", dedup_key=f"{row.fingerprint}:{row.id}:{event}")
        enqueue_message(
            self.store, self.config.settings, list(notify), row, msg, message_to_payload(msg), self.clock.now()
        )

    def got(self, name: str = "chat") -> list[tuple[str, int]]:
        capture: CapturingNotifier = self.runtime.notifiers[name]
        return [(m.event, m.incident.id) for m in capture.messages]

    def run(self, seconds: float, step: float = 1.0) -> None:
        end = self.clock.now() + seconds
        while self.clock.now() < end:
            self.clock.advance(step)
            self.outbox.tick()


def test_an_older_message_waiting_for_retry_is_never_overtaken(tmp_path: Path) -> None:
    p = Pipeline(tmp_path)
    p.runtime.notifiers["chat"].fail_times = 1
    a, b = p.incident(model="a"), p.incident(model="b")
    p.notify(a, "firing")
    p.outbox.tick()  # fails, retried after a backoff
    p.notify(b, "firing")
    p.notify(a, "resolved")
    p.outbox.tick()
    assert p.got() == []  # b's firing and a's resolve are due, but a's firing waits: nothing overtakes it
    p.run(10)
    assert p.got() == [("firing", a.id), ("firing", b.id), ("resolved", a.id)]


def test_rate_limit_spaces_messages_per_receiver(tmp_path: Path) -> None:
    p = Pipeline(tmp_path)
    p.runtime.notifiers["chat"].min_interval = 1.0  # like Slack: one message per second
    rows = [p.incident(model=str(i)) for i in range(3)]
    for r in rows:
        p.notify(r, "firing", ("chat", "pager"))
    p.outbox.tick()
    assert len(p.got("chat")) == 1 and len(p.got("pager")) == 3  # the other receiver is not held back
    p.clock.advance(0.5)
    p.outbox.tick()
    assert len(p.got("chat")) == 1
    p.clock.advance(0.5)
    p.outbox.tick()
    assert len(p.got("chat")) == 2


GROUPED = """
routes:
  - matchers: ["team=ml"]
    receivers: [chat]
    group_by: [check]
    group_wait: 30s
    group_interval: 5m
"""


def test_grouping_waits_then_sends_one_message_per_group(tmp_path: Path) -> None:
    p = Pipeline(tmp_path, GROUPED)
    rows = [p.incident(team="ml", model=str(i)) for i in range(3)]
    for r in rows:
        p.notify(r, "firing", ())
        p.clock.advance(5)
    p.run(10)
    assert p.got() == []  # group_wait: 30 s after the first message
    p.run(10)
    [group] = p.runtime.notifiers["chat"].messages
    assert group.event == "group" and group.title.startswith("[FIRING:3]")
    assert [m["incident"]["id"] for m in group.details["group"]] == [r.id for r in rows]
    # members are recorded as grouped into the carrier; the carrier is the oldest row
    states = [n.state for n in p.store.list_notifications()]
    assert states == ["sent", "grouped", "grouped"]
    # a later change of the same group waits for group_interval; resolves and a new firing go as one
    p.notify(rows[0], "resolved", ())
    late = p.incident(team="ml", model="late")
    p.notify(late, "firing", ())
    p.run(120)
    assert len(p.runtime.notifiers["chat"].messages) == 1
    p.run(200)
    second = p.runtime.notifiers["chat"].messages[1]
    assert second.title.startswith("[FIRING:1 RESOLVED:1]")


REPEATING = """
routes:
  - severity: [critical]
    receivers: [pager]
    repeat_interval: 1m
    repeat_backoff: 2
    max_repeat_interval: 5m
"""


def test_repeat_interval_backs_off_and_stops_on_resolve(tmp_path: Path) -> None:
    p = Pipeline(tmp_path, REPEATING)
    row = p.incident(severity="critical")
    p.notify(row, "firing", ())
    sent_at: list[float] = []
    for _ in range(1000):
        p.clock.advance(5)
        before = len(p.got("pager"))
        p.outbox.tick()
        if len(p.got("pager")) > before:
            sent_at.append(p.clock.now())
    start = sent_at[0]
    gaps = [round(b - a) for a, b in itertools.pairwise(sent_at)]
    assert gaps[:5] == [60, 120, 240, 300, 300], gaps  # 1m, 2m, 4m, then capped at 5m
    titles = [m.title for m in p.runtime.notifiers["pager"].messages]
    assert titles[1].startswith("[REPEAT 1]") and titles[2].startswith("[REPEAT 2]")
    assert len({m.dedup_key for m in p.runtime.notifiers["pager"].messages}) == len(sent_at)
    n = len(sent_at)
    p.notify(row, "resolved", ())
    p.run(900, step=10)
    assert p.got("pager")[-1] == ("resolved", row.id) and len(p.got("pager")) == n + 1
    assert start > 0


def test_repeats_pause_while_acknowledged(tmp_path: Path) -> None:
    p = Pipeline(tmp_path, REPEATING)
    row = p.incident(severity="critical")
    p.notify(row, "firing", ())
    p.run(2)
    p.store.update_incident(row.id, {}, transition=("acknowledged", "bob", "mine", {}), now=p.clock.now())
    p.run(600, step=10)
    assert len(p.got("pager")) == 1


def test_silence_with_matchers_until_it_expires(tmp_path: Path) -> None:
    p = Pipeline(tmp_path, 'silences: [{matchers: ["model=~rank.*"], comment: "known noisy"}]\n')
    now = p.clock.now()
    p.store.add_silence(
        {
            "matchers": ["check=latency", "env!=dev"],
            "starts_at": now,
            "ends_at": now + 100,
            "created_by": "bob",
            "comment": "maintenance",
            "created_at": now,
        }
    )
    silenced, ranker, dev = p.incident(env="prod"), p.incident(env="dev", model="ranker"), p.incident(env="dev")
    for r in (silenced, ranker, dev):
        p.notify(r, "firing")
    p.run(2)
    assert p.got() == [("firing", dev.id)]
    rows = {n.incident_id: n for n in p.store.list_notifications()}
    assert rows[silenced.id].state == "silenced" and "db:" in (rows[silenced.id].last_error or "")
    assert rows[ranker.id].state == "silenced" and "known noisy" in (rows[ranker.id].last_error or "")
    p.notify(silenced, "resolved")  # its firing never went out: no lonely "resolved" either
    p.run(2)
    assert p.got() == [("firing", dev.id)]
    p.clock.advance(100)  # the silence expired
    again = p.incident(env="prod", model="x")
    p.notify(again, "firing")
    p.run(2)
    assert p.got()[-1] == ("firing", again.id)


def test_approval_requests_are_never_silenced(tmp_path: Path) -> None:
    p = Pipeline(tmp_path, 'silences: [{matchers: ["check=latency"]}]\n')
    row = p.incident()
    p.notify(row, "approval")
    p.run(2)
    assert p.got() == [("approval", row.id)]


ROUTES = """
routes:
  - severity: [critical]
    receivers: [pager]
    continue: true
  - match: {team: ml}
    receivers: [chat]
"""


def test_routing_by_severity_and_labels(tmp_path: Path) -> None:
    p = Pipeline(tmp_path, ROUTES)
    crit_ml, warn_ml, crit_other = (
        p.incident(severity="critical", team="ml"),
        p.incident(severity="warning", team="ml", model="b"),
        p.incident(severity="critical", team="data"),
    )
    for r in (crit_ml, warn_ml, crit_other):
        p.notify(r, "firing", ())
    p.run(2)
    assert sorted(i for _, i in p.got("pager")) == sorted([crit_ml.id, crit_other.id])
    assert sorted(i for _, i in p.got("chat")) == sorted([crit_ml.id, warn_ml.id])


def test_route_config_errors_name_the_field() -> None:
    from aiops.errors import ConfigError

    with pytest.raises(ConfigError, match=r"t.yaml:5: routes\[0\].matchers"):
        parse_config(NOTIFIERS + 'routes: [{matchers: ["team~ml"], receivers: [chat]}]\n', "t.yaml", env={})
    with pytest.raises(ConfigError, match="severity"):
        parse_config(NOTIFIERS + "routes: [{severity: [sev1], receivers: [chat]}]\n", "t.yaml", env={})


def test_final_failure_is_recorded_and_later_messages_still_flow(tmp_path: Path) -> None:
    from aiops.errors import DeliveryError

    p = Pipeline(tmp_path)
    calls: list[Any] = []

    class Broken(Notifier):
        """Fails once, finally; then delivers."""

        def send(self, message: Any) -> Any:
            calls.append(message)
            if len(calls) == 1:
                raise DeliveryError("HTTP 404: channel_not_found", recoverable=False, reason="http_404")
            return None

    p.runtime.notifiers["chat"] = Broken()
    a, b = p.incident(model="a"), p.incident(model="b")
    p.notify(a, "firing")
    p.notify(b, "firing")
    p.outbox.tick()
    rows = p.store.list_notifications()
    assert [r.state for r in rows] == ["failed", "sent"]
    assert "channel_not_found" in (rows[0].last_error or "")


# -- flap control through the real incident state machine ----------------------------------------------------

FLAPPY = """
flapping: {threshold: 3, window: 10m}
checks:
  - name: latency
    every: 10s
    source: {type: scripted, channel: latency}
    detectors: [{type: threshold, above: 100}]
    policy: {notify: [chat]}
"""


def test_flapping_incident_is_announced_once_then_held(tmp_path: Path) -> None:
    p = Pipeline(tmp_path, FLAPPY)
    incidents = IncidentManager(p.store, lambda: p.runtime, p.clock.now)
    runner = CheckRunner(p.runtime.checks["latency"], p.store)

    def tick(value: float) -> None:
        p.clock.advance(10)
        ScriptedSource.push("latency", p.clock.now(), value)
        incidents.observe(runner.tick(p.clock.now()))
        p.outbox.tick()

    for _ in range(6):  # six open/resolve cycles in two minutes
        tick(500)
        tick(50)
    events = [m.event for m in p.runtime.notifiers["chat"].messages]
    assert events == ["firing", "resolved", "firing", "resolved", "flapping"], events
    held = [n for n in p.store.list_notifications() if n.state == "held"]
    assert len(held) == 3 * 2 + 1  # later firings and resolves, and the resolve of the announcing incident
    assert all("flapping" in (n.last_error or "") for n in held)
    deadline = time.monotonic() + 5
    for _ in range(70):  # quiet for the whole window: one closing message
        tick(50)
        if time.monotonic() > deadline:
            break
    events = [m.event for m in p.runtime.notifiers["chat"].messages]
    assert events[-1] == "resolved" and events.count("flapping") == 1
    assert "stopped flapping" in p.runtime.notifiers["chat"].messages[-1].title
    tick(500)  # a new problem after a quiet window is a normal firing again
    assert [m.event for m in p.runtime.notifiers["chat"].messages][-1] == "firing"


def test_upgrade_from_a_schema_without_the_pipeline_columns(tmp_path: Path) -> None:
    """A database made by an older aiops (outbox without group_key/route/parent_id) migrates in place and
    its queued notifications are delivered."""
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path}/old.db"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE aiops_meta (key VARCHAR(64) PRIMARY KEY, value TEXT NOT NULL)"))
        conn.execute(sa.text("INSERT INTO aiops_meta VALUES ('schema_version', '3')"))
        # every version-3 store had these; later revisions sign their rows (only their presence matters here)
        conn.execute(sa.text("CREATE TABLE aiops_transitions (id INTEGER PRIMARY KEY AUTOINCREMENT)"))
        conn.execute(sa.text("CREATE TABLE aiops_check_state (check_name VARCHAR(200) PRIMARY KEY)"))
        conn.execute(
            sa.text(
                "CREATE TABLE aiops_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, notifier VARCHAR(100) NOT NULL,"
                " dedup_key VARCHAR(200) NOT NULL, incident_id INTEGER, event VARCHAR(30) NOT NULL, payload JSON"
                " NOT NULL, state VARCHAR(20) NOT NULL, attempts INTEGER NOT NULL, next_attempt_at FLOAT NOT NULL,"
                " last_error TEXT, created_at FLOAT NOT NULL, sent_at FLOAT,"
                " CONSTRAINT uq_outbox_notifier_dedup UNIQUE (notifier, dedup_key))"
            )
        )
    engine.dispose()
    store = Store(url)
    assert store.migrate() >= "0004"
    p = Pipeline(tmp_path)
    msg = build_message("firing", p.incident(), "x", dedup_key="k1")
    store.enqueue_notification(
        {
            "notifier": "chat",
            "dedup_key": "k1",
            "incident_id": None,
            "event": "firing",
            "payload": message_to_payload(msg),
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": 0.0,
            "created_at": 0.0,
        }
    )
    OutboxDispatcher(store, lambda: p.runtime, p.clock.now).tick()
    assert p.got() == [("firing", msg.incident.id)]
