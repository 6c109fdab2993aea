"""Pushed telemetry of a store other than the daemon's, for a source configured with ``store_url``.

Outside :mod:`aiops.plugins` because it opens a :class:`~aiops.store.store.Store` (the plugin contracts must
not depend on the store), and public so that a source reaches it without importing the store itself: the
source gets only the narrow read-and-close view, never the ledger writes.
"""

from __future__ import annotations

from aiops.pushed import ClosablePushedEvents


def open_pushed_events(url: str) -> ClosablePushedEvents:
    """Open the store at ``url`` (migrated to the current schema) as a read view of its pushed telemetry."""
    from aiops.store.store import Store

    store = Store(url)
    store.migrate()
    return store
