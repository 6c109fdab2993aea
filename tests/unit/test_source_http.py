"""The http source against a real local HTTP server: selectors, rows (Airflow-style DAG runs), auth, failures."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from aiops.errors import SourceError
from aiops.plugins import DETECTORS, SOURCES, build
from aiops.sources.http import compile_path

STATS = {
    "model": {"name": "ranker", "healthy": True, "latency_ms": {"p50": 12.5, "p99": "48.0"}, "version": "v3"},
    "replicas": [{"qps": 10}, {"qps": 12}, {"qps": "n/a"}],
}
DAG_RUNS = {
    "dag_runs": [
        {"dag_run_id": "r1", "state": "success", "end_date": "2024-01-01T01:00:00+00:00", "duration": 300.0},
        {"dag_run_id": "r2", "state": "failed", "end_date": "2024-01-01T02:00:00+00:00", "duration": None},
    ],
    "total_entries": 2,
}


class _Server:
    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.routes: dict[str, tuple[int, bytes, float]] = {}
        self.cookie = ""  # set on every answer when not empty
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append({k.lower(): v for k, v in self.headers.items()})
                status, body, delay = owner.routes.get(self.path, (404, b'{"detail": "nope"}', 0.0))
                time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if owner.cookie:
                    self.send_header("Set-Cookie", owner.cookie)
                self.end_headers()
                with contextlib.suppress(BrokenPipeError):  # the client gave up (the timeout test)
                    self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def route(self, path: str, body: Any, status: int = 200, delay: float = 0.0) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.routes[path] = (status, raw, delay)


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def test_metrics_by_selector_with_wildcards_and_problems(server: _Server) -> None:
    server.route("/stats", STATS)
    source = build(
        SOURCES,
        "http",
        {
            "url": f"{server.url}/stats",
            "labels": {"service": "ranker"},
            "metrics": {
                "p99_ms": "$.model.latency_ms.p99",
                "healthy": "$.model['healthy']",
                "qps": "$.replicas[*].qps",
                "version": "$.model.version",
                "gone": "$.model.nothing",
            },
        },
    )
    frame = source.collect(None, 50.0)
    got = {s.key: list(s.values) for s in frame.series}
    assert got == {
        'p99_ms{service="ranker"}': [48.0],
        'healthy{service="ranker"}': [1.0],
        'qps{path="$.replicas[0].qps",service="ranker"}': [10.0],
        'qps{path="$.replicas[1].qps",service="ranker"}': [12.0],
    }
    assert {p.labels["problem"]: p.evidence["count"] for p in frame.problems} == {"non_numeric": 2, "no_match": 1}


def test_airflow_style_rows_feed_quality_detectors(server: _Server, tmp_path: Path) -> None:
    server.route("/api/v1/dags/etl/dagRuns", DAG_RUNS)
    (tmp_path / "token").write_text("airflow-token\n")
    source = build(
        SOURCES,
        "http",
        {
            "url": f"{server.url}/api/v1/dags/etl/dagRuns",
            "rows": "$.dag_runs",
            "metrics": {"last_end": "$.dag_runs[-1].end_date"},
            "bearer_token_file": str(tmp_path / "token"),
        },
    )
    frame = source.collect(None, 1704078000.0)  # 03:00
    assert [r["state"] for r in frame.rows] == ["success", "failed"]
    assert frame.series[0].values == (1704078000.0 - 3600,)
    assert server.requests[-1]["authorization"] == "Bearer airflow-token"
    failed = build(DETECTORS, "categories", {"allowed": {"state": ["success", "running", "queued"]}}).evaluate(frame)
    assert [(f.labels["column"], f.evidence["unexpected"]) for f in failed] == [("state", {"failed": 1})]
    stale = build(DETECTORS, "freshness", {"max_age": "30m", "series": "last_end"}).evaluate(frame)
    assert [f.evidence["age_seconds"] for f in stale] == [3600.0]


def test_failures_are_source_errors(server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    server.route("/html", b"<html>oops</html>")
    server.route("/denied", {"detail": "no"}, status=403)
    server.route("/slow", {"a": 1}, delay=2.0)
    server.route("/boom", {"detail": "down"}, status=503)
    server.route("/busy", {"detail": "later"}, status=429)
    cases = {
        "/html": ("not JSON", True),
        "/denied": ("credentials", False),
        "/boom": ("HTTP 503", True),
        "/busy": ("HTTP 429", True),  # the notifiers' rule (aiops.http_outcome): rate limited passes
        "/missing": ("HTTP 404", False),  # the same request fails again
    }
    for path, (message, recoverable) in cases.items():
        with pytest.raises(SourceError, match=message) as info:
            build(SOURCES, "http", {"url": server.url + path}).collect(None, 1.0)
        assert info.value.recoverable is recoverable
    started = time.monotonic()
    with pytest.raises(SourceError, match="no answer"):
        build(SOURCES, "http", {"url": server.url + "/slow", "timeout": 0.3}).collect(None, 1.0)
    assert time.monotonic() - started < 1.5
    monkeypatch.delenv("NO_SUCH_TOKEN_VAR", raising=False)
    with pytest.raises(SourceError, match="NO_SUCH_TOKEN_VAR") as info:
        build(SOURCES, "http", {"url": server.url, "bearer_token_env": "NO_SUCH_TOKEN_VAR"}).collect(None, 1.0)
    assert not info.value.recoverable


def test_env_credentials_and_bad_selectors(server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    server.route("/x", {"v": 1})
    monkeypatch.setenv("STATS_PW", "pw")
    source = build(
        SOURCES,
        "http",
        {"url": server.url + "/x", "metrics": {"v": "$.v"}, "username": "u", "password_env": "STATS_PW"},
    )
    assert source.collect(None, 1.0).series[0].values == (1.0,)
    assert server.requests[-1]["authorization"] == "Basic dTpwdw=="
    with pytest.raises(ValueError, match="starts with"):
        build(SOURCES, "http", {"url": server.url, "metrics": {"v": "v"}})
    with pytest.raises(ValueError, match="cannot parse"):
        compile_path("$.a[")


def test_each_poll_sends_the_current_token_and_the_cookies_the_server_set(server: _Server, tmp_path: Path) -> None:
    # the request is prepared once and sent again: a rotated token file and a cookie set by the server must
    # still reach the next poll
    server.route("/x", {"v": 1})
    token = tmp_path / "token"
    token.write_text("first\n")
    source = build(
        SOURCES, "http", {"url": server.url + "/x", "metrics": {"v": "$.v"}, "bearer_token_file": str(token)}
    )
    source.collect(None, 1.0)
    source.collect(None, 2.0)
    token.write_text("second\n")
    source.collect(None, 3.0)
    assert [r["authorization"] for r in server.requests] == ["Bearer first", "Bearer first", "Bearer second"]
    server.cookie = "session=abc"
    source.collect(None, 4.0)  # the answer sets the cookie
    source.collect(None, 5.0)
    assert "cookie" not in server.requests[-2] and server.requests[-1]["cookie"] == "session=abc"
