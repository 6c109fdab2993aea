"""The store's Alembic migrations on SQLite and a real PostgreSQL: a fresh store is built by the revisions and
matches ``aiops.store.schema``; a store written by the last release before Alembic (fixture made by that
release's code) upgrades in place with its incidents, actions, messages and check state intact; the offline
SQL builds the same schema; ``aiops db`` reports and upgrades."""

from __future__ import annotations

import itertools
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner

from aiops.cli import cli
from aiops.errors import StoreError
from aiops.store import migrations, schema
from aiops.store.migrations.env import include_name
from aiops.store.migrations.legacy import LEGACY_REVISIONS
from aiops.store.store import Store
from tests.data.legacy_store.load import ACTIONS, INCIDENTS, OUTBOX, load_legacy_store
from tests.servers import create_database


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    return create_database(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(empty_url: str) -> Iterator[Store]:
    s = Store(empty_url)
    yield s
    s.close()


def schema_differences(store: Store) -> list[Any]:
    """What separates the database from ``aiops.store.schema`` (tables, columns, types, indexes, uniques)."""
    with store.engine.connect() as conn:
        opts = {"include_name": include_name, "compare_type": True, "version_table": migrations.VERSION_TABLE}
        context = MigrationContext.configure(conn, opts=opts)
        return list(compare_metadata(context, schema.metadata))


def field(record: Any, name: str) -> Any:
    """A field of a store record, whether the store returns rows as mappings or as typed records."""
    value = record[name] if isinstance(record, Mapping) else getattr(record, name)
    return getattr(value, "value", value)  # an enum state compares as its stored string


def test_history_is_linear_and_every_legacy_version_is_a_revision() -> None:
    revisions = migrations.history()
    assert migrations.head_revisions() == (revisions[-1].id,), "two heads: re-point the newer down_revision"
    assert revisions[0].down == ()
    for older, newer in itertools.pairwise(revisions):
        assert newer.down == (older.id,)
    ids = [r.id for r in revisions]
    assert [LEGACY_REVISIONS[v] for v in sorted(LEGACY_REVISIONS)] == ids[: len(LEGACY_REVISIONS)]


def test_fresh_store_is_built_by_the_revisions_and_matches_the_schema_module(store: Store) -> None:
    assert store.schema_revision() == ""
    head = ",".join(migrations.head_revisions())
    assert store.migrate() == head
    assert schema_differences(store) == []
    assert store.migrate() == head  # idempotent
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM aiops_alembic_version")).scalar() == 1
        assert not sa.inspect(conn).has_table("alembic_version")  # another application's name stays free


def test_store_from_the_last_pre_alembic_release_upgrades_in_place(store: Store) -> None:
    load_legacy_store(store.url)
    before = migrations.status(store.engine)
    assert before.legacy_version == 4 and before.current == ("0004",)

    assert store.migrate() == ",".join(migrations.head_revisions())
    assert schema_differences(store) == []
    assert migrations.status(store.engine).legacy_version is None

    incidents = {field(i, "id"): i for i in store.list_incidents()}
    assert {k: (field(i, "fingerprint"), field(i, "state")) for k, i in incidents.items()} == INCIDENTS
    assert field(incidents[1], "labels") == {"series": "latency:p99", "model": "ranker"}
    assert field(incidents[1], "evidence")["baseline"] == [0.2, 0.21, 0.19]
    trail = [(field(t, "from_state"), field(t, "to_state")) for t in store.transitions(1)]
    states = [None, "firing", "remediating", "verifying", "resolved"]
    assert trail == list(itertools.pairwise(states))
    actions = {field(a, "id"): a for a in store.list_actions()}
    assert {k: (field(a, "idempotency_key"), field(a, "state")) for k, a in actions.items()} == ACTIONS
    assert field(actions[1], "outcome") == {"ok": True, "detail": "ranker v6 serving"}
    assert field(actions[1], "runs") == 1 and field(actions[1], "lease_owner") == "host:123:1.0"
    messages = {field(m, "id"): m for m in store.list_notifications()}
    assert {k: (field(m, "dedup_key"), field(m, "state")) for k, m in messages.items()} == OUTBOX
    assert field(messages[3], "group_key") == "oncall|check=drift"
    check = store.load_check_state("latency")
    assert check is not None and field(check, "detector_state") == {"p99": {"mean": 0.2, "var": 0.01, "n": 1200}}
    assert store.get_flag("paused") == "0"
    breaker = store.get_breaker("rollback")
    assert breaker is not None and field(breaker, "last_reason") == "healed"
    assert [field(s, "comment") for s in store.list_silences()] == ["backfill"]
    assert [field(e, "value") for e in store.read_events("pushed")] == pytest.approx([0.2, 0.21, 0.22])

    # The data goes on: ids continue after the old rows (PostgreSQL's sequences came along) and the
    # ledger's idempotency keys still hold.
    new = store.create_incident(
        {
            "fingerprint": "fp-new",
            "check_name": "latency",
            "labels": {},
            "state": "firing",
            "severity": "warning",
            "kind": "detector:anomaly",
            "summary": "again",
            "evidence": {},
            "opened_at": 2e9,
            "updated_at": 2e9,
            "last_seen_at": 2e9,
            "rung": 0,
            "attempts": 0,
            "healthy_ticks": 0,
            "notified_firing": False,
        },
        actor="test",
        reason="after the upgrade",
    )
    assert field(new, "id") == 4
    again = store.create_action(
        {
            "idempotency_key": "1:0:rollback",
            "incident_id": 1,
            "check_name": "latency",
            "rung": 0,
            "action_type": "rollback",
            "action_label": "rollback",
            "mode": "auto",
            "target": "model:ranker",
            "plan": {},
            "state": "pending",
            "runs": 0,
            "created_at": 2e9,
            "updated_at": 2e9,
        }
    )
    assert field(again, "id") == 1 and field(again, "state") == "succeeded"


def test_a_migration_that_fails_half_way_leaves_the_store_as_it_was(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Adoption, every revision and the version row are one transaction, on SQLite as on PostgreSQL: a
    failure after the revisions ran (here: right after Alembic returns) rolls all of it back."""
    load_legacy_store(store.url)
    with store.engine.connect() as conn:
        # As if the store were one release older, so that revision 0004 has work to do.
        conn.execute(sa.text("DROP TABLE aiops_flaps"))
        conn.execute(sa.text("UPDATE aiops_meta SET value = '3' WHERE key = 'schema_version'"))
        conn.commit()
    real_upgrade = migrations.command.upgrade

    def upgrade_then_fail(config: Any, revision: str) -> None:
        real_upgrade(config, revision)
        raise RuntimeError("killed after the revisions")

    monkeypatch.setattr(migrations.command, "upgrade", upgrade_then_fail)
    with pytest.raises(RuntimeError):
        store.migrate()
    with store.engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert "aiops_flaps" not in tables and migrations.VERSION_TABLE not in tables
    assert migrations.status(store.engine).legacy_version == 3
    monkeypatch.undo()
    store.migrate()  # and the next start does it all
    assert schema_differences(store) == []


def test_offline_sql_builds_the_same_schema(store: Store, empty_url: str) -> None:
    sql = migrations.offline_sql(store.url)
    if store.engine.dialect.name == "postgresql":
        assert "pg_advisory_xact_lock" in sql
        import psycopg

        dsn = sa.make_url(empty_url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.encode())
    else:
        conn = sqlite3.connect(str(sa.make_url(empty_url).database))
        conn.executescript(sql)
        conn.close()
    assert migrations.status(store.engine).up_to_date
    assert schema_differences(store) == []


def test_a_store_from_an_unknown_release_is_refused_clearly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/future.db"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE aiops_meta (key VARCHAR(64) PRIMARY KEY, value TEXT NOT NULL)"))
        conn.execute(sa.text("INSERT INTO aiops_meta VALUES ('schema_version', '9')"))
    engine.dispose()
    with pytest.raises(StoreError, match="schema_version is 9"):
        Store(url).migrate()


def test_a_store_migrated_by_a_newer_release_is_refused_clearly(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/newer.db")
    store.migrate()
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE aiops_alembic_version SET version_num = '9999'"))
    with pytest.raises(StoreError, match="at revision 9999, which this aiops does not have"):
        store.migrate()


def test_db_commands_report_and_upgrade_a_legacy_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/legacy.db"
    load_legacy_store(url)
    runner = CliRunner()
    head = ",".join(migrations.head_revisions())

    shown = runner.invoke(cli, ["db", "current", "--store", url, "--check"])
    assert "pre-Alembic schema_version 4" in shown.output
    assert shown.exit_code == 1  # adopting it is a pending change too
    sql = runner.invoke(cli, ["db", "upgrade", "--sql", "--store", url])
    assert sql.exit_code == 0 and "INSERT INTO aiops_alembic_version" in sql.stdout

    config = tmp_path / "aiops.yaml"
    config.write_text(f"store: {{url: '{url}'}}\n")
    done = runner.invoke(cli, ["db", "upgrade", "--config", str(config)])
    assert done.exit_code == 0, done.output
    assert done.stdout.strip().endswith(f"now at {head} (head)")
    shown = runner.invoke(cli, ["db", "current", "--config", str(config), "--check"])
    assert shown.exit_code == 0 and shown.stdout.strip() == f"{head} (head)"
    listed = runner.invoke(cli, ["db", "history"])
    assert listed.exit_code == 0 and listed.output.splitlines()[0].startswith("base -> 0001")
    assert f"-> {head} (head)" in listed.output


def test_db_commands_fail_in_one_line_without_a_traceback_or_the_password() -> None:
    url = "postgresql://aiops:s3cret@127.0.0.1:1/aiops"  # nothing listens on port 1
    for args in (["current"], ["upgrade"]):
        run = subprocess.run(
            [sys.executable, "-m", "aiops", "db", *args, "--store", url], capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 1
        assert run.stderr.count("\n") == 1 and run.stderr.startswith("aiops: error: store "), run.stderr
        assert "s3cret" not in run.stderr and "Connection refused" in run.stderr
