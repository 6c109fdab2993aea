"""Verdicts and remediation effectiveness as Prometheus metrics, read from the store at scrape time.

Why a custom collector (prometheus client_python's pattern for state that lives elsewhere): the verdicts and
the ledger are in the store, written by the CLI and by every replica, so a counter kept in one process
would miss most of them and reset on every restart. Exported:

- ``aiops_incident_verdicts_total{check,verdict}``: verdicts ever recorded (rows are never deleted, so it
  only grows);
- over the last :data:`~aiops.effectiveness.DEFAULT_WINDOW` (30 days), per ``{action,target}``:
  ``aiops_remediation_runs`` (finished runs), ``aiops_remediation_heal_ratio`` (healed / runs),
  ``aiops_remediation_heal_seconds`` (median time from the run's start to the verified resolution) and
  ``aiops_remediation_escalations`` (runs after which the incident was escalated).

The effectiveness figures read the ledger and the audit trail, so they are cached for a little while: a
dashboard scraped every few seconds does not redo the work each time. A store failing during a scrape yields
the families without samples instead of breaking the whole exposition.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from aiops.effectiveness import DEFAULT_WINDOW, Effectiveness, effectiveness
from aiops.store.store import Store
from aiops.store.verdicts import verdict_counts

EFFECTIVENESS_CACHE_SECONDS: Final = 30.0
_LABELS: Final = ["action", "target"]


_Families = tuple[CounterMetricFamily, GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]


def _families() -> _Families:
    return (
        CounterMetricFamily(
            "aiops_incident_verdicts",
            "Operators' verdicts recorded (useful, noise, missed).",
            labels=["check", "verdict"],
        ),
        GaugeMetricFamily("aiops_remediation_runs", "Finished remediation runs in the last 30 days.", labels=_LABELS),
        GaugeMetricFamily(
            "aiops_remediation_heal_ratio",
            "Share of finished remediation runs in the last 30 days after which verification resolved the incident.",
            labels=_LABELS,
        ),
        GaugeMetricFamily(
            "aiops_remediation_heal_seconds",
            "Median time from a remediation's start to the verified resolution, last 30 days.",
            labels=_LABELS,
        ),
        GaugeMetricFamily(
            "aiops_remediation_escalations",
            "Remediation runs in the last 30 days after which the incident was escalated to a person.",
            labels=_LABELS,
        ),
    )


class FeedbackCollector(Collector):
    """Yields the verdict counter and the effectiveness gauges of ``store``."""

    def __init__(
        self,
        store: Store,
        now: Callable[[], float] = time.time,
        *,
        window: float = DEFAULT_WINDOW,
        cache_seconds: float = EFFECTIVENESS_CACHE_SECONDS,
    ) -> None:
        self.store = store
        self.now = now
        self.window = window
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._cached: tuple[float, Sequence[Effectiveness]] | None = None

    def describe(self) -> Iterable[Metric]:
        # Families without samples: the registry checks names without calling collect() (no store access).
        return list(_families())

    def _effectiveness(self) -> Sequence[Effectiveness]:
        with self._lock:
            stamp = time.monotonic()
            if self._cached is not None and stamp - self._cached[0] < self.cache_seconds:
                return self._cached[1]
            rows = effectiveness(self.store, self.now() - self.window)
            self._cached = (stamp, rows)
            return rows

    def collect(self) -> Iterable[Metric]:
        verdicts, runs, ratio, seconds, escalations = _families()
        try:
            counts = verdict_counts(self.store)
            rows = self._effectiveness()
        except Exception:  # a scrape must not fail because the store hiccupped
            counts, rows = {}, []
        for (check, kind), n in sorted(counts.items()):
            verdicts.add_metric([check, kind], float(n))
        for row in rows:
            labels = [row.action, row.target]
            runs.add_metric(labels, float(row.runs))
            escalations.add_metric(labels, float(row.escalated))
            if row.heal_ratio is not None:
                ratio.add_metric(labels, row.heal_ratio)
            if row.median_heal_seconds is not None:
                seconds.add_metric(labels, row.median_heal_seconds)
        yield from (verdicts, runs, ratio, seconds, escalations)
