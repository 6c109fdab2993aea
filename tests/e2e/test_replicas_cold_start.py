"""Three real daemons started at the same instant all come up, ten rounds on an empty PostgreSQL store and ten
rounds of a rolling upgrade (a store at the previous schema revision, holding the incidents, actions and
messages an older release wrote, then three replicas of this release at once): one migrates the schema, the
others wait for its lock and find nothing left to do; all serve, and all stop cleanly.

The daemons are forked after the imports (:mod:`tests.e2e.forked_replicas`), so the three reach the store
within milliseconds of each other: the race a Deployment's three pods produce, and cheap enough to repeat.
Every round gets a new database on the session's one PostgreSQL cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from aiops.store import migrations
from aiops.store.migrations.lock import migration_transaction
from tests.data.legacy_store.load import INCIDENTS, load_legacy_store
from tests.e2e.forked_replicas import ForkedReplicas, Replica
from tests.integration.test_migration_cold_start import version_rows
from tests.servers import create_database, free_port

REPLICAS = 3
ROUNDS = 10  # per scenario: cold start, rolling upgrade
LEGACY_REVISION = "0004"  # the schema the legacy fixture was written at, by the last release before Alembic

CONFIG = """
store: {{url: "{url}"}}
state_dir: {work}/state
checks:
  - name: host
    every: 1s
    source: {{type: host, metrics: [host_cpu_percent]}}
    detectors: [{{type: threshold, above: 1000}}]
"""


@pytest.fixture(scope="module")
def launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForkedReplicas]:
    forked = ForkedReplicas(["aiops.sources.host", "aiops_detectors.threshold"], tmp_path_factory.mktemp("launcher"))
    try:
        yield forked
    finally:
        forked.close()


def previous_revision() -> str:
    """The revision before this release's head: what the release before this one left."""
    (head,) = migrations.head_revisions()
    (previous,) = next(r for r in migrations.history() if r.id == head).down
    return previous


def at_previous_revision(url: str) -> None:
    """The legacy fixture's store, brought to the previous revision as the previous release would have."""
    load_legacy_store(url)
    engine = sa.create_engine(url)
    try:
        with migration_transaction(engine) as conn:
            config = migrations.alembic_config(connection=conn)
            command.stamp(config, LEGACY_REVISION)
            command.upgrade(config, previous_revision())
    finally:
        engine.dispose()


def start_round(launcher: ForkedReplicas, url: str, workdir: Path) -> list[Replica]:
    """Three replicas of one store, started together; returns once all three are ready."""
    replicas = []
    for i in range(REPLICAS):
        work = workdir / f"replica-{i}"
        work.mkdir(parents=True)
        config = work / "aiops.yaml"
        config.write_text(CONFIG.format(url=url, work=work))
        replicas.append(Replica(config, free_port(), work / "daemon.log"))
    launcher.round(replicas)
    try:
        launcher.wait_ready(replicas, timeout=60)
    except BaseException:
        launcher.stop()
        raise
    return replicas


def incidents(url: str) -> dict[int, tuple[str, str]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, fingerprint, state FROM aiops_incidents ORDER BY id")).all()
    finally:
        engine.dispose()
    return {row.id: (row.fingerprint, row.state) for row in rows}


def drop_database(base_url: str, url: str) -> None:
    admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{sa.make_url(url).database}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("scenario", ["cold", "rolling"])
def test_three_daemons_started_together_all_come_up(
    scenario: str, launcher: ForkedReplicas, postgres_url: str, tmp_path: Path
) -> None:
    head = list(migrations.head_revisions())
    for round_no in range(ROUNDS):
        url = create_database(postgres_url)
        if scenario == "rolling":
            at_previous_revision(url)
            assert version_rows(url) == [previous_revision()]
        replicas = start_round(launcher, url, tmp_path / f"round-{round_no}")
        codes = launcher.stop()
        logs = [r.logs() for r in replicas]
        assert codes == [0] * REPLICAS, [r.logs()[-3000:] for r in replicas]
        migrated = [log for log in logs if '"store_schema_upgraded"' in log]
        assert len(migrated) == 1, f"round {round_no}: {len(migrated)} replicas migrated"
        errors = [line for log in logs for line in log.splitlines() if '"level": "error"' in line]
        assert errors == [], f"round {round_no}: {errors[:3]}"
        assert version_rows(url) == head
        if scenario == "rolling":
            assert incidents(url) == INCIDENTS
        drop_database(postgres_url, url)
