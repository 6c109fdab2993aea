"""The base class of telemetry sources."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Any

from aiops.plugins.base import Plugin
from aiops.types import Frame


class Source(Plugin):
    """Collects telemetry. Side-effect free; raises :class:`aiops.errors.SourceError` on failure.

    ``since`` is the ``until`` of the previous successful collection (None on the first), so a source
    returns only what is new. Incremental state such as a file offset is an optimisation the source may
    keep in ``state_dict`` (persisted by the daemon), never a correctness requirement.
    """

    @abstractmethod
    def collect(self, since: float | None, until: float) -> Frame:
        """What arrived in ``(since, until]``, as series and/or table rows."""

    def state_dict(self) -> dict[str, Any]:
        """Incremental state to persist with the check's cursor (JSON-safe). Default: none."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (possibly from an older version: tolerate missing keys).
        Default: nothing to restore."""

    def history(self, since: float, until: float, every: float) -> Replay | None:
        """The source's own past over ``[since, until]`` in one bulk read, for a backtest; None (the
        default) when it cannot read its past, in which case the backtest collects tick by tick."""
        return None


class Replay(Source):
    """A source's past over a backtest window, replayed tick by tick through the same check code.

    Declared beside :class:`Source` because :meth:`Source.history` returns one; the replays themselves live in
    :mod:`aiops.replay`.
    """

    def rewind(self) -> None:
        """Back to the start of the window, so the same replay serves several runs (default: stateless)."""
