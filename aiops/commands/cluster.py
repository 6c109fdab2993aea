"""``aiops cluster``: the daemon replicas sharing the store, with their heartbeat ages, how many checks each
runs (holds the lease of) and how old those leases are.

It reads the store the config names (or ``--store``), so it answers whether or not a daemon runs here, and
from any machine that reaches the store: the question "which replicas are alive?" must not depend on one of
them answering.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from aiops.commands.db import _open, _store_options


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _ages(youngest: float | None, oldest: float | None) -> str:
    return "-" if youngest is None or oldest is None else f"{youngest:.0f}s..{oldest:.0f}s"


@click.command("cluster")
@_store_options
@click.option("--json", "as_json", is_flag=True, help="Print the members as JSON.")
def cluster(config_path: str | None, store_url: str | None, as_json: bool) -> None:
    """List the replicas registered in the store: id, address, version, start, heartbeat age, alive, checks
    owned and the age of their youngest and oldest lease."""
    from aiops.cli import _table_width
    from aiops.cluster.membership import STALE_AFTER, Membership
    from aiops.text import table

    store = _open(config_path, store_url)
    try:
        store.migrate()  # a store older than the members table gains it (as every command's first use does)
        rows = Membership(store, replica="", address="").view()
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no replica registered: no daemon has run on this store since it gained the members table")
        return
    headers = ["REPLICA", "ADDRESS", "VERSION", "STARTED (UTC)", "HEARTBEAT AGE", "ALIVE", "CHECKS", "LEASE AGES"]
    cells: list[list[Any]] = [
        [
            r["replica"],
            r["address"],
            r["version"],
            _when(r["started_at"]),
            f"{r['heartbeat_age']:.1f}s",
            "yes" if r["alive"] else "no",
            r["checks_owned"],
            _ages(r["lease_age_min"], r["lease_age_max"]),
        ]
        for r in rows
    ]
    for line in table(headers, cells, flexible=[0], width=_table_width(None), right=[4, 6]):
        click.echo(line)
    alive = sum(bool(r["alive"]) for r in rows)
    click.echo(f"{alive} of {len(rows)} alive (a replica is presumed dead after {STALE_AFTER:g}s without heartbeat)")
