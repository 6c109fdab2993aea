"""Exactly once under replicas: three real daemons share one real PostgreSQL store and the same check; one push
of 60 anomalies (60 series, so 60 fingerprints) reaches all three at once, ten times. Every anomaly must give
exactly one incident, one remediation and one message per dedup key and receiver, however the replicas race:
the database's unique index on open fingerprints settles who opens an incident, an action is claimed before it
runs, and an outbox row is claimed before it is sent.

The remediation is a webhook call (its ``Idempotency-Key`` is the action's key) to the same local receiver as
the messages: a real side effect that is cheap to make and to count, so ten rounds fit in CI time. Which
remediation runs does not matter here: what the replicas race for is the claim of the action, the same for
every remediation type.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from tests.e2e.daemon import DaemonProcess, wait_for
from tests.servers import WebhookReceiver, create_database

REPLICAS = 3
ANOMALIES = 60  # in one push; enough that unguarded replicas collide on many fingerprints in every round
ROUNDS = 10  # bursts per test run, each on fresh fingerprints
SETTLE = 3.0  # seconds after the last round: every replica ticked several times since, so a duplicate shows
TOKEN = "burst-t0ken"

CONFIG = """
store: {{url: "{url}"}}
state_dir: {work}/state
server: {{token: "{token}"}}
notifiers:
  hook: {{type: webhook, url: "{hook}"}}
checks:
  - name: burst
    every: 0.5s
    source: {{type: push, stream: burst}}
    detectors: [{{type: threshold, above: 500}}]
    policy:
      cooldown: 0s
      notify: [hook]
      actions:
        - type: webhook
          url: "{remediate}"
          target: "{{label.target}}"
          timeout: 30s
"""


@pytest.fixture
def replicas(postgres_url: str, tmp_path: Path, webhook_receiver: WebhookReceiver) -> Iterator[list[DaemonProcess]]:
    url = create_database(postgres_url)
    daemons = []
    for i in range(REPLICAS):
        work = tmp_path / f"replica-{i}"
        work.mkdir()
        config = work / "aiops.yaml"
        config.write_text(
            CONFIG.format(
                url=url,
                work=work,
                token=TOKEN,
                hook=webhook_receiver.url + "/hook",
                remediate=webhook_receiver.url + "/remediate",
            )
        )
        daemons.append(DaemonProcess(config, work))
    try:
        for daemon in daemons:
            daemon.start(wait_ready=False)
        for daemon in daemons:
            daemon.wait_ready(timeout=90)
        yield daemons
        for daemon in daemons:
            assert daemon.terminate(timeout=30) == 0, daemon.logs()
    finally:
        for daemon in daemons:
            if daemon.proc is not None and daemon.proc.poll() is None:
                daemon.kill()


def _count(url: str, sql: str) -> int:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(sql)).scalar() or 0)
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.postgres
def test_a_burst_seen_by_three_replicas_is_handled_exactly_once(
    replicas: list[DaemonProcess], webhook_receiver: WebhookReceiver
) -> None:
    logs = lambda: "\n".join(d.logs() for d in replicas)  # noqa: E731
    for round_no in range(ROUNDS):
        points = [
            {"name": "errors", "value": 1000, "labels": {"target": f"r{round_no}-t{i}"}} for i in range(ANOMALIES)
        ]
        pushed = requests.post(
            f"{replicas[round_no % REPLICAS].url}/api/v1/ingest",
            json={"stream": "burst", "points": points},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        assert pushed.status_code == 202, pushed.text
        expected = ANOMALIES * (round_no + 1)
        wait_for(
            lambda n=expected: len(_remediations(webhook_receiver)) >= n and _firing(webhook_receiver) >= n,
            90,
            f"{expected} remediations and {expected} firing messages",
            logs,
        )
        # No pause per round: a late duplicate of this round breaks the exact counts of the next one.
        if round_no == ROUNDS - 1:
            time.sleep(SETTLE)
        _assert_exactly_once(webhook_receiver, expected)
    store_url = _store_url(replicas[0])
    detector = "FROM aiops_incidents WHERE kind LIKE 'detector:%'"
    assert _count(store_url, f"SELECT count(*) {detector}") == ANOMALIES * ROUNDS
    assert _count(store_url, f"SELECT count(DISTINCT fingerprint) {detector}") == ANOMALIES * ROUNDS
    assert _count(store_url, "SELECT count(*) FROM aiops_actions WHERE runs > 1") == 0


def _assert_exactly_once(receiver: WebhookReceiver, expected: int) -> None:
    runs = Counter(_remediations(receiver))
    assert len(runs) == expected and set(runs.values()) == {1}, runs.most_common(5)
    sent = Counter((r.path, r.json["dedup_key"]) for r in receiver.requests if r.path == "/hook")
    assert [k for k, n in sent.items() if n > 1] == [], "messages sent more than once"
    assert _firing(receiver) == expected


def _remediations(receiver: WebhookReceiver) -> list[str]:
    """The idempotency key of every remediation call received (one per action run)."""
    return [r.headers["idempotency-key"] for r in receiver.requests if r.path == "/remediate"]


def _firing(receiver: WebhookReceiver) -> int:
    """Firing messages about the anomalies; a replica's own notices (a tick skipped on a loaded machine:
    check_overrun) page on their own and are not what this test counts."""
    return sum(
        r.path == "/hook"
        and r.json.get("event") == "firing"
        and not r.json.get("incident", {}).get("labels", {}).get("problem")
        for r in receiver.requests
    )


def _store_url(daemon: DaemonProcess) -> str:
    text = daemon.config_path.read_text()
    return text.split('url: "', 1)[1].split('"', 1)[0]
