"""Cluster membership as Prometheus metrics, read from the store at scrape time.

Why a collector reading the store (like :mod:`aiops.feedback_metrics`): every replica registers in the store,
so any replica's scrape tells how many are alive, and an alert on "fewer members than expected" fires even
when the lost replica cannot report anything itself. Exported:

- ``aiops_cluster_members``: replicas whose heartbeat is recent and whose process is alive;
- ``aiops_cluster_member_heartbeat_age_seconds{replica}``: seconds since each registered replica's heartbeat.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

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
