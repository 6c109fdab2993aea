"""The daemon's own metrics, behind small typed methods so the engine never touches prometheus objects.

Why a class and not module-level metrics: the registry is injected, so every test (and every daemon
instance in one process, as the end-to-end tests do) gets its own ``CollectorRegistry`` and no metric is
registered twice. State that lives elsewhere (open incidents in the store, the outbox backlog) is read at
scrape time, through a custom collector and a gauge callback, instead of being mirrored and going stale.

Naming follows Prometheus conventions: ``aiops_`` prefix, counters end in ``_total``, durations are
``_seconds`` histograms, and nothing is ever called ``up`` (that name belongs to Prometheus itself).
"""

from __future__ import annotations

import platform
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

import aiops
from aiops.types import IncidentState

CHECK_OUTCOMES: Final = ("ok", "error", "timeout")
NOTIFICATION_OUTCOMES: Final = ("sent", "retry", "failed")

# Checks run from milliseconds (a file tail) to minutes (a drift test over a big table).
CHECK_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0
)
# A run starts late by a few milliseconds when all is well; by seconds when workers or the CPU are short.
LATENESS_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Remediations run from a webhook call to a retraining job.
ACTION_BUCKETS: Final = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0, 3600.0
)


class _IncidentCollector(Collector):
    """Yields ``aiops_incidents{state}`` from the store at scrape time.

    Every open state is always present (0 when none), so a dashboard's ``sum by (state)`` and an alert on
    ``aiops_incidents{state="escalated"} > 0`` never see a series appear from nowhere. A store that fails
    during a scrape must not break the whole exposition, so the failure yields no samples instead.
    """

    def __init__(self, incident_counts: Callable[[], Mapping[str, int]]) -> None:
        self._counts = incident_counts

    def describe(self) -> Iterable[GaugeMetricFamily]:
        # Returning a family here makes the registry check for name clashes without calling collect(),
        # which would hit the store at registration time.
        return [GaugeMetricFamily("aiops_incidents", "Open incidents by state.", labels=["state"])]

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily("aiops_incidents", "Open incidents by state.", labels=["state"])
        try:
            counts = dict(self._counts())
        except Exception:  # a scrape must not fail because the store hiccupped
            counts = None
        if counts is not None:
            states = [str(s) for s in IncidentState if s.is_open]
            states += sorted(k for k in counts if k not in states)
            for state in states:
                family.add_metric([state], float(counts.get(state, 0)))
        yield family


class Telemetry:
    """All self-metrics of one daemon, registered once into ``registry``.

    >>> from prometheus_client import CollectorRegistry, generate_latest
    >>> t = Telemetry(CollectorRegistry(), incident_counts=lambda: {"firing": 2})
    >>> t.check_run("cpu", "ok", 0.02)
    >>> b'aiops_incidents{state="firing"} 2.0' in generate_latest(t.registry)
    True
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        incident_counts: Callable[[], Mapping[str, int]] = dict,
    ) -> None:
        self.registry = registry
        self._lock = threading.Lock()
        # the labelled child of each per-check metric, by (metric, label values): every check run updates three,
        # and prometheus_client's labels() validates and stringifies its arguments and takes a lock each time
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self._outbox_pending: Callable[[], float] = lambda: 0.0

        self._build_info = Info("aiops_build", "Version of the aiops daemon.", registry=registry)
        self._build_info.info({"version": aiops.__version__, "python": platform.python_version()})

        self._check_runs = Counter(
            "aiops_check_runs_total",
            "Check runs by outcome (ok, error, timeout).",
            ["check", "outcome"],
            registry=registry,
        )
        self._check_duration = Histogram(
            "aiops_check_duration_seconds",
            "Wall time of one check run: collect, evaluate and its share of saving detector state.",
            ["check"],
            buckets=CHECK_BUCKETS,
            registry=registry,
        )
        self._tick_lateness = Histogram(
            "aiops_check_tick_lateness_seconds",
            "How long after its scheduled time a check run started (waiting for a worker or the CPU).",
            ["check"],
            buckets=LATENESS_BUCKETS,
            registry=registry,
        )
        self._ticks_skipped = Counter(
            "aiops_check_ticks_skipped_total",
            "Scheduled check runs that did not run: the previous run was still going, or it was too late.",
            ["check"],
            registry=registry,
        )
        self._housekeeping_skipped = Counter(
            "aiops_housekeeping_runs_skipped_total",
            "Runs of the daemon's own jobs (leases, executor, outbox, sweeper, ...) that did not start: the "
            "previous run was still going, or it was too late.",
            ["job"],
            registry=registry,
        )
        self._findings = Counter(
            "aiops_findings_total",
            "Findings produced by checks, by kind.",
            ["check", "kind"],
            registry=registry,
        )
        self._actions = Counter(
            "aiops_actions_total",
            "Remediation executions by final state.",
            ["action", "outcome"],
            registry=registry,
        )
        self._action_duration = Histogram(
            "aiops_action_duration_seconds",
            "Wall time of one remediation execution.",
            ["action"],
            buckets=ACTION_BUCKETS,
            registry=registry,
        )
        self._notifications = Counter(
            "aiops_notifications_total",
            "Notification delivery attempts by outcome (sent, retry, failed).",
            ["notifier", "outcome"],
            registry=registry,
        )
        self._outbox = Gauge("aiops_outbox_pending", "Notifications waiting in the outbox.", registry=registry)
        self._outbox.set_function(self._read_outbox_pending)
        self._reload_ok = Gauge(
            "aiops_config_last_reload_successful",
            "Whether the last configuration (re)load succeeded (1) or was rejected (0).",
            registry=registry,
        )
        self._reload_ts = Gauge(
            "aiops_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration (re)load.",
            registry=registry,
        )
        self._paused = Gauge(
            "aiops_paused", "1 while the global kill switch is on (no remediation runs).", registry=registry
        )
        self._scheduler_running = Gauge(
            "aiops_scheduler_running", "1 while the check scheduler is running.", registry=registry
        )
        registry.register(_IncidentCollector(incident_counts))

    # -- checks -------------------------------------------------------------------------------------------
    def check_run(self, check: str, outcome: str, seconds: float) -> None:
        """One check run ended; ``outcome`` is ok, error or timeout."""
        if outcome not in CHECK_OUTCOMES:
            raise ValueError(f"check outcome must be one of {', '.join(CHECK_OUTCOMES)}, not {outcome!r}")
        self._child(self._check_runs, check, outcome).inc()
        self._child(self._check_duration, check).observe(max(0.0, seconds))

    def check_lateness(self, check: str, seconds: float) -> None:
        """A run of ``check`` started ``seconds`` after it was due."""
        self._child(self._tick_lateness, check).observe(max(0.0, seconds))

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, remembered (labels are never removed from these metrics)."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:  # two threads may both look it up: labels() returns the same child to both
            child = self._children[key] = metric.labels(*labels)
        return child

    def check_ticks_skipped(self, check: str, count: int = 1) -> None:
        """``count`` scheduled runs of ``check`` were skipped (overrun or missed)."""
        if count > 0:
            self._ticks_skipped.labels(check).inc(count)

    def housekeeping_runs_skipped(self, job: str, count: int = 1) -> None:
        """``count`` scheduled runs of the daemon's own job ``job`` (e.g. ``leases``) were skipped."""
        if count > 0:
            self._child(self._housekeeping_skipped, job).inc(count)

    def finding(self, check: str, kind: str, count: int = 1) -> None:
        """A check produced ``count`` findings of ``kind`` (anomaly, drift, check_timeout, ...)."""
        if count > 0:
            self._findings.labels(check, kind).inc(count)

    # -- actions ------------------------------------------------------------------------------------------
    def action(self, action: str, outcome: str, seconds: float | None = None) -> None:
        """A remediation ended with ``outcome`` (its final ActionState, e.g. succeeded, failed, dry_run)."""
        self._actions.labels(action, outcome).inc()
        if seconds is not None:
            self._action_duration.labels(action).observe(max(0.0, seconds))

    # -- notifications ------------------------------------------------------------------------------------
    def notification(self, notifier: str, outcome: str) -> None:
        """One delivery attempt; ``outcome`` is sent, retry or failed."""
        if outcome not in NOTIFICATION_OUTCOMES:
            raise ValueError(f"notification outcome must be one of {', '.join(NOTIFICATION_OUTCOMES)}, not {outcome!r}")
        self._notifications.labels(notifier, outcome).inc()

    def set_outbox_pending_callback(self, fn: Callable[[], float]) -> None:
        """Read the outbox backlog from ``fn`` at scrape time (the store owns that number)."""
        with self._lock:
            self._outbox_pending = fn

    def _read_outbox_pending(self) -> float:
        with self._lock:
            fn = self._outbox_pending
        try:
            return float(fn())
        except Exception:  # a scrape must not fail because the store hiccupped
            return float("nan")

    # -- daemon state -------------------------------------------------------------------------------------
    def config_reloaded(self, ok: bool, now: float | None = None) -> None:
        """Record a (re)load attempt; only a success moves the timestamp, as Prometheus itself does."""
        self._reload_ok.set(1 if ok else 0)
        if ok:
            self._reload_ts.set(time.time() if now is None else now)

    def set_paused(self, paused: bool) -> None:
        self._paused.set(1 if paused else 0)

    def set_scheduler_running(self, running: bool) -> None:
        self._scheduler_running.set(1 if running else 0)
