"""The prometheus source against a real Prometheus scraping a real target (a prometheus-client HTTP server
started by the test): same values as a raw HTTP GET of the API, labels kept, errors made clear."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from aiops.errors import SourceError
from aiops.plugins import DETECTORS, SOURCES, build
from aiops.types import fingerprint
from tests.servers import WebhookReceiver, free_port

pytestmark = pytest.mark.servers


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from tests.servers import start_prometheus, stop_process

    registry = CollectorRegistry()
    gauge = Gauge("model_latency_seconds", "p99 latency", ["model"], registry=registry)
    gauge.labels(model="a").set(1.5)
    gauge.labels(model="b").set(2.5)
    port = free_port()
    server, _thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    config = f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: app
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
"""
    proc, url = start_prometheus(config, tmp_path_factory.mktemp("prom"))
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            got = requests.get(f"{url}/api/v1/query", params={"query": "model_latency_seconds"}, timeout=5).json()
            if len(got["data"]["result"]) == 2:
                break
            time.sleep(0.2)
        else:
            pytest.fail("Prometheus never scraped the target")
        time.sleep(2.5)  # a few samples for the range query
        yield url
    finally:
        stop_process(proc)
        server.shutdown()


def _raw(url: str, path: str, **params: Any) -> list[dict[str, Any]]:
    """What `curl` gets: the raw API answer."""
    body = requests.get(f"{url}{path}", params=params, timeout=5).json()
    assert body["status"] == "success"
    return list(body["data"]["result"])


def test_instant_query_matches_the_raw_api(prom: str) -> None:
    now = time.time()
    source = build(SOURCES, "prometheus", {"url": prom, "query": "model_latency_seconds"})
    frame = source.collect(None, now)
    got = {s.labels["model"]: (s.name, dict(s.labels), list(s.timestamps), list(s.values)) for s in frame.series}
    raw = _raw(prom, "/api/v1/query", query="model_latency_seconds", time=f"{now:.3f}")
    assert len(raw) == len(got) == 2
    for item in raw:
        labels = {k: v for k, v in item["metric"].items() if k != "__name__"}
        assert got[labels["model"]] == (
            "model_latency_seconds",
            labels,
            [float(item["value"][0])],
            [float(item["value"][1])],
        )
    assert got["a"][1] == {"model": "a", "job": "app", "instance": got["a"][1]["instance"]}
    assert got["a"][3] == [1.5] and got["b"][3] == [2.5]
    assert frame.problems == ()
    # The result's labels reach the findings, hence the incident fingerprints: one incident per model.
    findings = build(DETECTORS, "threshold", {"above": 1.0}).evaluate(frame)
    assert sorted(f.labels["model"] for f in findings) == ["a", "b"]
    assert all(f.labels["job"] == "app" and f.labels["series"] == "model_latency_seconds" for f in findings)
    assert len({fingerprint("latency", f.labels) for f in findings}) == 2


def test_range_query_matches_the_raw_api_and_is_incremental(prom: str) -> None:
    now = time.time()
    source = build(SOURCES, "prometheus", {"url": prom, "query": "model_latency_seconds", "mode": "range", "step": 1})
    frame = source.collect(now - 3, now)
    raw = _raw(
        prom, "/api/v1/query_range", query="model_latency_seconds", start=f"{now - 3:.3f}", end=f"{now:.3f}", step="1"
    )
    got = {s.labels["model"]: s for s in frame.series}
    for item in raw:
        series = got[item["metric"]["model"]]
        expected = [(float(t), float(v)) for t, v in item["values"] if float(t) > now - 3]
        assert list(zip(series.timestamps, series.values, strict=True)) == expected
        assert len(expected) >= 2
    later = source.collect(now, now + 1.0)  # only points after `since`
    assert all(t > now for s in later.series for t in s.timestamps)


def test_scalar_and_nan_results(prom: str) -> None:
    frame = build(SOURCES, "prometheus", {"url": prom, "query": "scalar(vector(NaN))"}).collect(None, time.time())
    assert [p.labels["problem"] for p in frame.problems] == ["non_finite"]
    frame = build(SOURCES, "prometheus", {"url": prom, "query": "vector(3)", "name": "three"}).collect(
        None, time.time()
    )
    assert [(s.name, list(s.values)) for s in frame.series] == [("three", [3.0])]


def test_bad_query_is_a_final_error_naming_the_prometheus_error(prom: str) -> None:
    source = build(SOURCES, "prometheus", {"url": prom, "query": "sum(rate(x[5m]"})
    with pytest.raises(SourceError) as info:
        source.collect(None, time.time())
    assert info.value.recoverable is False
    assert "bad_data" in str(info.value) and "parse error" in str(info.value)


def test_unreachable_and_hanging_endpoints_are_recoverable() -> None:
    dead = build(SOURCES, "prometheus", {"url": f"http://127.0.0.1:{free_port()}", "query": "up"})
    with pytest.raises(SourceError) as info:
        dead.collect(None, time.time())
    assert info.value.recoverable is True
    with socket.socket() as listener:  # accepts the connection, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        hanging = build(SOURCES, "prometheus", {"url": url, "query": "up", "timeout": 0.5})
        started = time.monotonic()
        with pytest.raises(SourceError, match=r"no answer within 0\.5s") as info:
            hanging.collect(None, time.time())
        assert time.monotonic() - started < 5 and info.value.recoverable


def test_auth_headers_and_a_non_prometheus_answer(webhook_receiver: WebhookReceiver, tmp_path: Any) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    source = build(
        SOURCES,
        "prometheus",
        {"url": webhook_receiver.url, "query": "up", "bearer_token_file": str(token_file), "headers": {"X-Org": "ml"}},
    )
    with pytest.raises(SourceError, match="not a Prometheus answer"):
        source.collect(None, time.time())
    request = webhook_receiver.requests[-1]
    assert request.headers["authorization"] == "Bearer s3cret-token"
    assert request.headers["x-org"] == "ml"
    assert request.path.startswith("/api/v1/query?")
    basic = build(
        SOURCES,
        "prometheus",
        {"url": webhook_receiver.url, "query": "up", "basic_auth": {"username": "u", "password": "p"}},
    )
    webhook_receiver.respond_with(401)
    with pytest.raises(SourceError, match="credentials") as info:
        basic.collect(None, time.time())
    assert not info.value.recoverable
    assert webhook_receiver.requests[-1].headers["authorization"] == "Basic dTpw"
