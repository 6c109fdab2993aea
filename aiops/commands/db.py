"""``aiops db``: the store's schema migrations, for operators who migrate by hand.

The daemon upgrades the store itself at every start, so these commands are for the other cases: migrating
ahead of a rollout (then starting the new version against a ready schema), checking from a deploy pipeline
whether a migration is pending (``aiops db current --check``), or handing the SQL to a database review
(``aiops db upgrade --sql``). The store is the one the config names, as for every other command, or ``--store``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from aiops.errors import AiopsError

if TYPE_CHECKING:
    from aiops.store.store import Store

_store_option = click.option(
    "--store",
    "store_url",
    metavar="URL",
    envvar="AIOPS_STORE_URL",
    help="SQLAlchemy URL of the store (default: store.url of the config).",
)
_config_option = click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="AIOPS_CONFIG",
    help="Config file (default: $AIOPS_CONFIG, ./aiops.yaml, or the built-in demo).",
)


def _store_options(command: Callable[..., Any]) -> Callable[..., Any]:
    return _config_option(_store_option(command))


def _open(config_path: str | None, store_url: str | None) -> Store:
    """The store named by ``--store``, else by the config, resolved exactly as the other commands do."""
    from aiops.store.store import Store

    if not store_url:
        from aiops.commands.common import load_config_or_demo

        store_url = str(load_config_or_demo(config_path).settings.store.url)
    return Store(store_url)


@click.group("db")
def db() -> None:
    """Schema migrations of the durable store (Alembic). The daemon also upgrades at start."""


@db.command()
@_store_options
@click.option("--sql", "as_sql", is_flag=True, help="Print the SQL instead of running it (nothing is changed).")
@click.option(
    "--from",
    "start",
    metavar="REVISION",
    help="With --sql: the revision the store is at (default: `aiops db current`'s answer, or an empty store).",
)
def upgrade(config_path: str | None, store_url: str | None, as_sql: bool, start: str | None) -> None:
    """Bring the store's schema to the newest revision (safe while replicas run: one migrates, the rest wait)."""
    from aiops.store import migrations

    store = _open(config_path, store_url)
    try:
        if as_sql:
            legacy = False
            if start is None:
                status = migrations.status(store.engine)
                start, legacy = ",".join(status.current) or None, status.legacy_version is not None
            sql = migrations.offline_sql(store.url, start, adopt_legacy=legacy)
            click.echo(sql or f"-- the store is at {start} (head): nothing to run", nl=not sql)
            return
        if start is not None:
            raise AiopsError("--from only goes with --sql")
        before = migrations.status(store.engine)
        after = store.migrate()
    finally:
        store.close()
    where = f"store {store.redacted_url}"
    if before.legacy_version is not None:
        old = before.legacy_version
        click.echo(f"{where} made before Alembic (schema_version {old}) adopted; now at {after} (head)")
    elif before.up_to_date:
        click.echo(f"{where} is at {after} (head): nothing to do")
    else:
        click.echo(f"{where} upgraded from {','.join(before.current) or 'an empty store'} to {after} (head)")


@db.command()
@_store_options
@click.option("--check", is_flag=True, help="Exit 1 if the store is not at the newest revision.")
def current(config_path: str | None, store_url: str | None, check: bool) -> None:
    """Show the revision the store is at (changes nothing)."""
    from aiops.store import migrations

    store = _open(config_path, store_url)
    try:
        status = migrations.status(store.engine)
    finally:
        store.close()
    at = ",".join(status.current) or "none (empty store)"
    if status.legacy_version is not None:
        at += f" (pre-Alembic schema_version {status.legacy_version}; the next upgrade adopts it)"
    heads = ",".join(status.heads)
    click.echo(f"{at}{' (head)' if status.up_to_date else f'; newest is {heads}'}")
    if check and not status.up_to_date:
        raise click.exceptions.Exit(1)


@db.command()
def history() -> None:
    """List the schema revisions, oldest first."""
    from aiops.store import migrations

    for rev in migrations.history():
        summary = rev.message.splitlines()[0] if rev.message else ""
        down = ",".join(rev.down) or "base"
        click.echo(f"{down} -> {rev.id}{' (head)' if rev.is_head else ''}  {summary}")
