"""Self-metrics: names and types follow Prometheus conventions, and the real promtool accepts the exposition."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from aiops.server import ApiServer
from aiops.telemetry import Telemetry

PROMTOOL = "/usr/bin/promtool"


def _promtool() -> str:
    path = PROMTOOL if os.access(PROMTOOL, os.X_OK) else shutil.which("promtool")
    if not path:
        pytest.fail("promtool not found (Debian package `prometheus`); run scripts/install-test-deps.sh")
    return path


def _exercised(registry: CollectorRegistry, counts: dict[str, int] | None = None) -> Telemetry:
    t = Telemetry(registry, incident_counts=lambda: counts if counts is not None else {"firing": 2, "escalated": 1})
    for outcome in ("ok", "error", "timeout"):
        t.check_run("cpu", outcome, 0.03)
    t.finding("cpu", "anomaly")
    t.finding("cpu", "check_timeout", count=2)
    t.action("restart", "succeeded", 1.5)
    t.action("restart", "failed", 0.2)
    t.action("retrain", "dry_run")
    for outcome in ("sent", "retry", "failed"):
        t.notification("webhook", outcome)
    t.set_outbox_pending_callback(lambda: 4)
    t.config_reloaded(True, now=1_700_000_000.0)
    t.config_reloaded(False)
    t.set_paused(True)
    t.set_scheduler_running(True)
    return t


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_promtool_check_metrics_is_clean(registry: CollectorRegistry) -> None:
    _exercised(registry)
    exposition = generate_latest(registry)
    result = subprocess.run(
        [_promtool(), "check", "metrics"], input=exposition, capture_output=True, timeout=30, check=False
    )
    assert result.returncode == 0, (result.stdout + result.stderr).decode()
    assert result.stdout.strip() == b"" and result.stderr.strip() == b"", (result.stdout + result.stderr).decode()


def test_names_values_and_conventions(registry: CollectorRegistry) -> None:
    _exercised(registry)
    s = _samples(registry)
    assert s[("aiops_check_runs_total", (("check", "cpu"), ("outcome", "timeout")))] == 1
    assert s[("aiops_check_duration_seconds_count", (("check", "cpu"),))] == 3
    assert s[("aiops_findings_total", (("check", "cpu"), ("kind", "check_timeout")))] == 2
    assert s[("aiops_actions_total", (("action", "restart"), ("outcome", "succeeded")))] == 1
    assert s[("aiops_action_duration_seconds_count", (("action", "restart"),))] == 2
    assert s[("aiops_notifications_total", (("notifier", "webhook"), ("outcome", "retry")))] == 1
    assert s[("aiops_outbox_pending", ())] == 4
    assert s[("aiops_config_last_reload_successful", ())] == 0  # the last attempt failed
    assert s[("aiops_config_last_reload_success_timestamp_seconds", ())] == 1_700_000_000.0
    assert s[("aiops_paused", ())] == 1
    assert s[("aiops_scheduler_running", ())] == 1
    assert s[("aiops_incidents", (("state", "firing"),))] == 2
    assert s[("aiops_incidents", (("state", "escalated"),))] == 1
    assert s[("aiops_incidents", (("state", "pending"),))] == 0  # every open state present
    assert ("aiops_incidents", (("state", "resolved"),)) not in s  # not open
    info = [k for k in s if k[0] == "aiops_build_info"]
    assert len(info) == 1 and {"version", "python"} <= dict(info[0][1]).keys()
    names = {name for name, _ in s}
    assert "up" not in names
    assert all(n.startswith("aiops_") for n in names)


def test_incident_counts_are_read_at_scrape_time(registry: CollectorRegistry) -> None:
    counts = {"firing": 1}
    Telemetry(registry, incident_counts=lambda: counts)
    assert _samples(registry)[("aiops_incidents", (("state", "firing"),))] == 1
    counts["firing"] = 5
    assert _samples(registry)[("aiops_incidents", (("state", "firing"),))] == 5


def test_a_failing_store_does_not_break_the_scrape(registry: CollectorRegistry) -> None:
    def broken() -> dict[str, int]:
        raise RuntimeError("store down")

    t = Telemetry(registry, incident_counts=broken)
    t.set_outbox_pending_callback(broken)  # type: ignore[arg-type]
    s = _samples(registry)
    assert not [k for k in s if k[0] == "aiops_incidents"]
    assert s[("aiops_build_info", next(k for k in s if k[0] == "aiops_build_info")[1])] == 1


def test_invalid_outcomes_are_rejected(registry: CollectorRegistry) -> None:
    t = Telemetry(registry)
    with pytest.raises(ValueError, match="ok, error, timeout"):
        t.check_run("cpu", "weird", 1.0)
    with pytest.raises(ValueError, match="sent, retry, failed"):
        t.notification("webhook", "delivered")


def test_two_instances_on_separate_registries_do_not_clash() -> None:
    Telemetry(CollectorRegistry())
    Telemetry(CollectorRegistry())


@pytest.mark.servers
def test_real_prometheus_scrapes_the_api_server(
    registry: CollectorRegistry, prometheus_factory: Callable[[str], tuple[subprocess.Popen[Any], str]]
) -> None:
    """Prometheus itself ingests what /metrics serves (content type, format, names)."""
    from tests.unit.test_http import FakeBackend  # the fake lives with the API tests

    _exercised(registry)
    with ApiServer(FakeBackend(), registry, listen="127.0.0.1:0") as server:
        host, port = server.address
        _, prom = prometheus_factory(
            "global:\n  scrape_interval: 250ms\n  scrape_timeout: 250ms\n"
            f"scrape_configs:\n  - job_name: aiops\n    static_configs:\n      - targets: ['{host}:{port}']\n"
        )
        deadline = time.monotonic() + 20
        result: list[Any] = []
        while time.monotonic() < deadline and not result:
            r = requests.get(f"{prom}/api/v1/query", params={"query": 'aiops_incidents{state="firing"}'}, timeout=5)
            result = r.json()["data"]["result"]
            time.sleep(0.3)
        assert result, "Prometheus never ingested aiops_incidents"
        assert result[0]["value"][1] == "2"
        up = requests.get(f"{prom}/api/v1/query", params={"query": "up"}, timeout=5).json()["data"]["result"]
        assert up[0]["value"][1] == "1"
