"""Schema migrations of the durable store, with Alembic.

The revisions ship inside the package (``versions/``) and Alembic is configured here in code, so neither a
user nor the daemon needs an ``alembic.ini``. :func:`upgrade` is what ``Store.migrate()`` runs at every start
and what ``aiops db upgrade`` runs by hand: under the migration lock (:mod:`.lock`), it adopts a store made
before Alembic (:mod:`.legacy`) and applies the missing revisions, all in one transaction.

The version row lives in ``aiops_alembic_version``, not Alembic's default ``alembic_version``, so the store can
share a database with another Alembic-migrated application (MLflow, Airflow) without the two colliding.
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.exc import SQLAlchemyError

from aiops.errors import StoreError
from aiops.store.migrations.legacy import legacy_revision, legacy_schema_version
from aiops.store.migrations.lock import migration_transaction

SCRIPT_LOCATION = Path(__file__).resolve().parent
VERSION_TABLE = "aiops_alembic_version"

# stdlib logging, not structlog's default printer: CLI commands migrate too, and their stdout is their output.
# The daemon's logging setup renders these records like its own.
log = logging.getLogger("aiops.store.migrations")


@dataclass(frozen=True)
class Revision:
    """One step of the schema's history, as ``aiops db history`` lists it."""

    id: str
    down: tuple[str, ...]
    message: str
    is_head: bool


@dataclass(frozen=True)
class SchemaStatus:
    """Where a store stands: its revisions (none for an empty store), the newest ones, and the version a
    pre-Alembic release left in ``aiops_meta`` if the store has not been adopted yet."""

    current: tuple[str, ...]
    heads: tuple[str, ...]
    legacy_version: int | None = None

    @property
    def up_to_date(self) -> bool:
        return self.legacy_version is None and set(self.current) == set(self.heads)


def alembic_config(
    *, connection: sa.Connection | None = None, url: str | None = None, out: TextIO | None = None
) -> Config:
    """Alembic's configuration for the store, built in code: the packaged scripts, and either the caller's
    connection (online) or a URL whose dialect an offline script is written for."""
    config = Config(output_buffer=out)
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    # New revision files are v<id>_<slug>.py: a module name that mypy and pytest can import.
    config.set_main_option("file_template", "v%%(rev)s_%%(slug)s")
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # ConfigParser interpolates '%'
    config.attributes["connection"] = connection
    return config


@functools.cache
def _script() -> ScriptDirectory:
    """The packaged revisions, read once per process (they change only with the installed aiops)."""
    return ScriptDirectory.from_config(alembic_config())


def head_revisions() -> tuple[str, ...]:
    return tuple(sorted(_script().get_heads()))


@functools.cache
def _known_revisions() -> frozenset[str]:
    return frozenset(rev.revision for rev in _script().walk_revisions())


def history() -> list[Revision]:
    """Every revision, oldest first."""
    script = _script()
    heads = set(script.get_heads())
    revisions = [
        Revision(
            id=rev.revision,
            down=_as_tuple(rev.down_revision),
            message=(rev.doc or "").strip(),
            is_head=rev.revision in heads,
        )
        for rev in script.walk_revisions()
    ]
    return revisions[::-1]


def _as_tuple(down: str | Sequence[str] | None) -> tuple[str, ...]:
    if down is None:
        return ()
    return (down,) if isinstance(down, str) else tuple(down)


def _current(conn: sa.Connection) -> tuple[str, ...]:
    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return tuple(sorted(context.get_current_heads()))


def _database_error(engine: sa.Engine, exc: SQLAlchemyError) -> StoreError:
    """One line naming the store (password hidden) and what the database said, for the CLI and the logs."""
    said = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    where = engine.url.render_as_string(hide_password=True)
    return StoreError(f"store {where}: {exc.__class__.__name__}: {said[0] if said else ''}")


def status(engine: sa.Engine) -> SchemaStatus:
    """Read where the store stands; changes nothing."""
    try:
        with engine.connect() as conn:
            legacy = legacy_schema_version(conn, VERSION_TABLE)
            current = _current(conn) if legacy is None else (legacy_revision(legacy),)
    except CommandError as exc:
        raise StoreError(f"cannot read the store's schema revision: {exc}", recoverable=False) from exc
    except SQLAlchemyError as exc:
        raise _database_error(engine, exc) from exc
    return SchemaStatus(current=current, heads=head_revisions(), legacy_version=legacy)


def upgrade(engine: sa.Engine) -> tuple[str, ...]:
    """Bring the store to the newest revision, serialised with every other aiops process on the same store;
    returns the revisions it is at afterwards."""
    try:
        with migration_transaction(engine) as conn:
            config = alembic_config(connection=conn)
            legacy = legacy_schema_version(conn, VERSION_TABLE)
            if legacy is not None:
                command.stamp(config, legacy_revision(legacy))
                log.info(
                    "store_schema_adopted",
                    extra={"schema_version": legacy, "revision": legacy_revision(legacy)},
                )
            before = _current(conn)
            unknown = set(before) - _known_revisions()
            if unknown:
                raise StoreError(
                    f"the store is at revision {','.join(sorted(unknown))}, which this aiops does not have: a newer"
                    " release migrated it; run that release (or restore the backup taken before the upgrade)",
                    recoverable=False,
                )
            if set(before) != set(head_revisions()):  # at head, the usual restart, nothing is loaded or run
                command.upgrade(config, "heads")
            after = _current(conn)
    except CommandError as exc:
        raise StoreError(f"cannot migrate the store: {exc}", recoverable=False) from exc
    except SQLAlchemyError as exc:
        raise _database_error(engine, exc) from exc
    if after != before:
        log.info(
            "store_schema_upgraded", extra={"from_revision": ",".join(before) or None, "to_revision": ",".join(after)}
        )
    return after


def offline_sql(url: str, start: str | None = None, *, adopt_legacy: bool = False) -> str:
    """The SQL that :func:`upgrade` would run, for ``url``'s dialect, from revision ``start`` (default: an empty
    store) to the newest; for operators whose database changes go through review. ``adopt_legacy``: the store
    was made before Alembic and is at ``start`` without a version table, so the script first records it."""
    out = io.StringIO()
    config = alembic_config(url=url, out=out)
    try:
        if adopt_legacy and start:
            command.stamp(config, start, sql=True)
        command.upgrade(config, f"{start}:heads" if start else "heads", sql=True)
    except CommandError as exc:
        raise StoreError(f"cannot render the migration SQL: {exc}", recoverable=False) from exc
    return out.getvalue()
