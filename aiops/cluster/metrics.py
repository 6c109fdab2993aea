"""Cluster membership as Prometheus metrics, read from the store at scrape time.

Why a collector reading the store (like :mod:`aiops.feedback_metrics`): every replica registers in the store,
so any replica's scrape tells how many are alive, and an alert on "fewer members than expected" fires even
when the lost replica cannot report anything itself. Exported:

- ``aiops_cluster_members``: replicas whose heartbeat is recent and whose process is alive;
- ``aiops_cluster_member_heartbeat_age_seconds{replica}``: seconds since each registered replica's heartbeat.

:class:`LeaseMetrics` is this replica's own view (the checks it holds, the leases it took over).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from aiops.cluster.membership import members
from aiops.store.store import Store


class ClusterCollector(Collector):
    def __init__(self, store: Store, now: Callable[[], float] = time.time) -> None:
        self.store = store
        self.now = now

    def collect(self) -> Iterable[Metric]:
        alive = GaugeMetricFamily("aiops_cluster_members", "Daemon replicas alive on this store (recent heartbeat).")
        ages = GaugeMetricFamily(
            "aiops_cluster_member_heartbeat_age_seconds",
            "Seconds since each registered replica's last heartbeat.",
            labels=["replica"],
        )
        try:
            registered = members(self.store)
        except Exception:  # a scrape must not fail because the store hiccupped: the families stay empty
            yield from (alive, ages)
            return
        now = self.now()
        alive.add_metric([], sum(m.alive(now) for m in registered))
        for member in registered:
            ages.add_metric([member.replica], member.heartbeat_age(now))
        yield from (alive, ages)


class LeaseMetrics:
    """This replica's share of the checks: ``aiops_checks_owned`` (a gauge read at scrape time from the leases
    it holds) and ``aiops_lease_takeovers_total`` (leases it claimed that another replica held before: a
    replica died, was paused past its lease, or gave checks up when the cluster grew)."""

    def __init__(self, registry: CollectorRegistry, owned: Callable[[], int]) -> None:
        self._owned = Gauge("aiops_checks_owned", "Checks whose lease this replica holds.", registry=registry)
        self._owned.set_function(lambda: float(owned()))
        self._takeovers = Counter(
            "aiops_lease_takeovers_total",
            "Check leases this replica claimed from another replica (expired or released).",
            registry=registry,
        )

    def taken_over(self, count: int) -> None:
        if count:
            self._takeovers.inc(count)
