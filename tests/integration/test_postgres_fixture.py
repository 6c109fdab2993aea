"""The real-server fixtures of tests/conftest.py and tests/servers.py work, so other tests can trust them."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from tests.servers import WebhookReceiver, free_port, stop_process

Factory = Callable[[str], tuple[subprocess.Popen[Any], str]]


@pytest.mark.postgres
def test_postgres_url_answers_select_1(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
            version = conn.execute(sa.text("SHOW server_version_num")).scalar_one()
            assert int(version) >= 150000
            assert conn.execute(sa.text("SHOW fsync")).scalar_one() == "off"
    finally:
        engine.dispose()


def test_free_port_is_bindable() -> None:
    import socket

    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_webhook_receiver_records_and_scripts_answers(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.respond_with(429, (503, {"Retry-After": "2"}))
    r1 = requests.post(f"{webhook_receiver.url}/hook", json={"n": 1}, headers={"X-Sig": "abc"}, timeout=5)
    r2 = requests.post(f"{webhook_receiver.url}/hook", json={"n": 2}, timeout=5)
    r3 = requests.post(f"{webhook_receiver.url}/other", data=b"not json", timeout=5)
    assert [r1.status_code, r2.status_code, r3.status_code] == [429, 503, 200]
    assert r2.headers["Retry-After"] == "2"
    got = webhook_receiver.wait_for(3)
    assert [(r.path, r.json) for r in got] == [("/hook", {"n": 1}), ("/hook", {"n": 2}), ("/other", None)]
    assert got[0].headers["x-sig"] == "abc"
    assert got[2].body == b"not json"


@pytest.mark.servers
def test_prometheus_and_alertmanager_start(prometheus_factory: Factory, alertmanager_factory: Factory) -> None:
    am_proc, am_url = alertmanager_factory(
        "route:\n  receiver: hook\nreceivers:\n  - name: hook\n    webhook_configs:\n"
        f"      - url: http://127.0.0.1:{free_port()}/hook\n"
    )
    prom_proc, prom_url = prometheus_factory(
        "global:\n  scrape_interval: 1s\n"
        f"alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{am_url[len('http://'):]}']\n"
        "scrape_configs:\n  - job_name: self\n    static_configs:\n"
        f"      - targets: ['{prom_url_placeholder()}']\n"
    )
    assert requests.get(f"{am_url}/api/v2/status", timeout=5).json()["cluster"]["status"] == "disabled"
    assert requests.get(f"{prom_url}/api/v1/status/config", timeout=5).json()["status"] == "success"
    stop_process(prom_proc)
    stop_process(am_proc)
    assert prom_proc.poll() is not None and am_proc.poll() is not None


def prom_url_placeholder() -> str:
    """A scrape target that does not exist: Prometheus must start with it and mark it down."""
    return f"127.0.0.1:{free_port()}"

