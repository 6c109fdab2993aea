"""The base class of detectors."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from aiops.plugins.base import Plugin
from aiops.types import Finding, Frame


class Detector(Plugin):
    """Turns a frame into findings. Stateful detectors persist through ``state_dict``/``load_state_dict``.

    A detector that keeps one state per series (the streaming metric detectors) may also declare the
    per-series checkpoint hooks, so the daemon saves only the series that changed since the last save.
    """

    # True when :meth:`evaluate` judges each series of a frame on its own and never feeds a series a point
    # at or before the last one it was fed (the per-series metric detectors): the engine may then hand it a
    # big frame a part at a time (an abandoned run stops between parts, leaving every series either fed or
    # untouched), and re-deliver points it has already seen.
    per_series: ClassVar[bool] = False

    @abstractmethod
    def evaluate(self, frame: Frame) -> list[Finding]:
        """Findings about the new data of ``frame``; an empty frame gives none."""

    def state_dict(self) -> dict[str, Any]:
        """What the detector learned, JSON-safe, so a restart does not relearn from scratch. Default: none."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned. Default: nothing to restore."""

    def warm_up(self) -> None:
        """Pay one-off costs (compiling, loading a reference) before the first tick, whose time counts
        against the check's timeout. Default: nothing to warm."""

    def series_versions(self) -> Mapping[str, float] | None:
        """Each series' version (its last timestamp fed) for per-series checkpoints; None (the default)
        means the detector is saved whole through :meth:`state_dict`."""
        return None

    def series_state(self, key: str) -> dict[str, Any]:
        """One series' state, for a detector that returns :meth:`series_versions`. Default: empty."""
        return {}

    def load_series_state(self, key: str, state: Mapping[str, Any]) -> None:
        """Restore one series saved by :meth:`series_state`. Default: nothing to restore."""
