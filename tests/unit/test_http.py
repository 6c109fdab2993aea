"""The HTTP API against a fake in-memory backend, over real HTTP with ``requests``."""

from __future__ import annotations

import json
import logging
import signal
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import structlog
from prometheus_client import CollectorRegistry

from aiops.errors import AiopsError
from aiops.http.backend import ApiBackend
from aiops.server import MAX_BODY, ApiServer, is_loopback, parse_listen
from aiops.telemetry import Telemetry

TOKEN = "t0ken-Sup3r-s3cret"


class FakeBackend:
    """An in-memory daemon: two incidents, two actions, records every write call."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[Any, ...]] = []
        self.is_ready: tuple[bool, str] = (True, "")
        self.reload_result: tuple[bool, str] = (True, "config reloaded: 2 checks")
        self.is_paused = False
        self.raise_next: Exception | None = None
        self.incidents = {
            1: {"id": 1, "state": "firing", "check": "cpu", "transitions": [], "actions": []},
            2: {"id": 2, "state": "resolved", "check": "disk", "transitions": [], "actions": []},
        }
        self.actions = {
            10: {"id": 10, "state": "awaiting_approval", "incident_id": 1},
            11: {"id": 11, "state": "succeeded", "incident_id": 2},
        }

    def _maybe_raise(self) -> None:
        if self.raise_next is not None:
            exc, self.raise_next = self.raise_next, None
            raise exc

    def ready(self) -> tuple[bool, str]:
        return self.is_ready

    def list_incidents(self, state: str | None, limit: int) -> list[dict[str, Any]]:
        self.calls.append(("list_incidents", state, limit))
        items = [i for i in self.incidents.values() if state is None or i["state"] == state]
        return items[:limit]

    def get_incident(self, incident_id: int) -> dict[str, Any] | None:
        return self.incidents.get(incident_id)

    def _incident(self, incident_id: int) -> dict[str, Any]:
        self._maybe_raise()
        if incident_id not in self.incidents:
            raise AiopsError(f"no incident {incident_id}", reason="not_found")
        return self.incidents[incident_id]

    def acknowledge(self, incident_id: int, actor: str, comment: str) -> dict[str, Any]:
        incident = self._incident(incident_id)
        self.calls.append(("acknowledge", incident_id, actor, comment))
        incident["state"] = "acknowledged"
        return incident

    def silence(self, incident_id: int, actor: str, duration_seconds: float, comment: str) -> dict[str, Any]:
        incident = self._incident(incident_id)
        self.calls.append(("silence", incident_id, actor, duration_seconds, comment))
        incident["state"] = "silenced"
        return incident

    def approve(self, action_id: int, actor: str, approved: bool) -> dict[str, Any]:
        self._maybe_raise()
        action = self.actions.get(action_id)
        if action is None:
            raise AiopsError(f"no action {action_id}", reason="not_found")
        if action["state"] != "awaiting_approval":
            raise AiopsError(f"action {action_id} is {action['state']}, not awaiting approval", reason="conflict")
        self.calls.append(("approve", action_id, actor, approved))
        action["state"] = "pending" if approved else "rejected"
        return action

    def list_actions(self, state: str | None, limit: int) -> list[dict[str, Any]]:
        self.calls.append(("list_actions", state, limit))
        return [a for a in self.actions.values() if state is None or a["state"] == state][:limit]

    def reload(self) -> tuple[bool, str]:
        self.calls.append(("reload",))
        return self.reload_result

    def set_paused(self, paused: bool, actor: str) -> None:
        self.calls.append(("set_paused", paused, actor))
        self.is_paused = paused

    def paused(self) -> bool:
        return self.is_paused


def _start(backend: FakeBackend, registry: CollectorRegistry, **kw: Any) -> ApiServer:
    server = ApiServer(backend, registry, listen=kw.pop("listen", "127.0.0.1:0"), **kw)
    server.start()
    return server


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def api(backend: FakeBackend, registry: CollectorRegistry) -> Iterator[str]:
    """Base URL of a server with a token configured."""
    Telemetry(registry, incident_counts=lambda: {"firing": 1})
    server = _start(backend, registry, token=TOKEN)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def open_api(backend: FakeBackend, registry: CollectorRegistry) -> Iterator[str]:
    """Base URL of a loopback server without a token."""
    server = _start(backend, registry)
    try:
        yield server.url
    finally:
        server.stop()


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_fake_backend_satisfies_the_protocol(backend: FakeBackend) -> None:
    assert isinstance(backend, ApiBackend)


def test_probes(api: str, backend: FakeBackend) -> None:
    r = requests.get(f"{api}/livez", timeout=5)
    assert (r.status_code, r.text) == (200, "ok")
    assert requests.get(f"{api}/readyz", timeout=5).status_code == 200
    backend.is_ready = (False, "store unreachable")
    r = requests.get(f"{api}/readyz", timeout=5)
    assert r.status_code == 503 and "store unreachable" in r.text


def test_metrics_exposition_and_content_type(api: str) -> None:
    r = requests.get(f"{api}/metrics", timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'aiops_incidents{state="firing"} 1.0' in r.text
    r = requests.get(f"{api}/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}, timeout=5)
    assert r.headers["Content-Type"].startswith("application/openmetrics-text")
    assert r.text.rstrip().endswith("# EOF")


def test_list_and_get_incidents(api: str, backend: FakeBackend) -> None:
    r = requests.get(f"{api}/api/v1/incidents", params={"state": "firing", "limit": "5"}, timeout=5)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    assert [i["id"] for i in r.json()["incidents"]] == [1]
    assert backend.calls[-1] == ("list_incidents", "firing", 5)
    requests.get(f"{api}/api/v1/incidents", timeout=5)
    assert backend.calls[-1] == ("list_incidents", None, 100)
    r = requests.get(f"{api}/api/v1/incidents/2", timeout=5)
    assert r.status_code == 200 and r.json()["check"] == "disk" and "transitions" in r.json()
    assert requests.get(f"{api}/api/v1/incidents/99", timeout=5).status_code == 404
    assert requests.get(f"{api}/api/v1/incidents/abc", timeout=5).status_code == 404
    for bad in ("x", "0", "100000"):
        r = requests.get(f"{api}/api/v1/incidents", params={"limit": bad}, timeout=5)
        assert r.status_code == 400 and "limit" in r.json()["error"]


def test_writes_need_the_bearer_token(api: str, backend: FakeBackend) -> None:
    r = requests.post(f"{api}/api/v1/incidents/1/ack", json={}, timeout=5)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    r = requests.post(f"{api}/api/v1/incidents/1/ack", json={}, headers={"Authorization": "Bearer nope"}, timeout=5)
    assert r.status_code == 401
    r = requests.post(f"{api}/-/reload", headers={"Authorization": f"Basic {TOKEN}"}, timeout=5)
    assert r.status_code == 401
    assert not [c for c in backend.calls if c[0] in ("acknowledge", "reload")]
    r = requests.post(f"{api}/api/v1/incidents/1/ack", json={"comment": "looking"}, headers=AUTH, timeout=5)
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
    assert backend.calls[-1] == ("acknowledge", 1, "api", "looking")


def test_without_a_token_writes_are_refused_but_loopback_reload_works(open_api: str, backend: FakeBackend) -> None:
    r = requests.post(f"{open_api}/api/v1/pause", timeout=5)
    assert r.status_code == 403 and "server.token" in r.json()["error"]
    assert backend.is_paused is False
    r = requests.post(f"{open_api}/-/reload", timeout=5)
    assert r.status_code == 200 and r.json()["message"] == "config reloaded: 2 checks"


def test_reload_on_a_non_loopback_listener_needs_a_token(backend: FakeBackend, registry: CollectorRegistry) -> None:
    server = _start(backend, registry, listen="0.0.0.0:0")
    try:
        assert not server.loopback
        r = requests.post(f"{server.url}/-/reload", timeout=5)
        assert r.status_code == 403 and "server.token" in r.json()["error"]
        assert ("reload",) not in backend.calls
    finally:
        server.stop()


def test_reload_failure_is_500_with_the_message(api: str, backend: FakeBackend) -> None:
    backend.reload_result = (False, "checks[0].every: not a duration")
    r = requests.post(f"{api}/-/reload", headers=AUTH, timeout=5)
    assert r.status_code == 500 and r.json()["error"] == "checks[0].every: not a duration"


def test_silence_parses_durations(api: str, backend: FakeBackend) -> None:
    url = f"{api}/api/v1/incidents/1/silence"
    assert requests.post(url, json={"duration": "1h", "comment": "maint"}, headers=AUTH, timeout=5).ok
    assert backend.calls[-1] == ("silence", 1, "api", 3600.0, "maint")
    assert requests.post(url, json={"duration": 90}, headers=AUTH, timeout=5).ok
    assert backend.calls[-1] == ("silence", 1, "api", 90.0, "")
    for body, needle in (({}, "required"), ({"duration": "soon"}, "not a duration"), ({"duration": 0}, "positive"),
                         ({"duration": True}, "must be"), ({"duration": "1h", "comment": 5}, "comment")):
        r = requests.post(url, json=body, headers=AUTH, timeout=5)
        assert r.status_code == 400 and needle in r.json()["error"], (body, r.text)


def test_actions_approve_deny_and_backend_errors(api: str, backend: FakeBackend) -> None:
    r = requests.get(f"{api}/api/v1/actions", params={"state": "awaiting_approval"}, timeout=5)
    assert [a["id"] for a in r.json()["actions"]] == [10]
    r = requests.post(f"{api}/api/v1/actions/10/approve", headers=AUTH, timeout=5)
    assert r.status_code == 200 and r.json()["state"] == "pending"
    assert backend.calls[-1] == ("approve", 10, "api", True)
    r = requests.post(f"{api}/api/v1/actions/10/deny", headers=AUTH, timeout=5)
    assert r.status_code == 409 and "not awaiting approval" in r.json()["error"]
    assert requests.post(f"{api}/api/v1/actions/99/deny", headers=AUTH, timeout=5).status_code == 404
    backend.raise_next = AiopsError("comment too long", reason="invalid")
    assert requests.post(f"{api}/api/v1/actions/11/deny", headers=AUTH, timeout=5).status_code == 400
    backend.raise_next = RuntimeError(f"db exploded with {TOKEN}")
    r = requests.post(f"{api}/api/v1/incidents/1/ack", headers=AUTH, timeout=5)
    assert r.status_code == 500 and TOKEN not in r.text


def test_pause_resume_status(api: str, backend: FakeBackend) -> None:
    assert requests.get(f"{api}/api/v1/status", timeout=5).json()["paused"] is False
    r = requests.post(f"{api}/api/v1/pause", headers=AUTH, timeout=5)
    assert r.json() == {"paused": True} and backend.calls[-1] == ("set_paused", True, "api")
    assert requests.get(f"{api}/api/v1/status", timeout=5).json()["paused"] is True
    assert requests.post(f"{api}/api/v1/resume", headers=AUTH, timeout=5).json() == {"paused": False}


def test_malformed_and_oversized_bodies(api: str) -> None:
    url = f"{api}/api/v1/incidents/1/ack"
    headers = {**AUTH, "Content-Type": "application/json"}
    r = requests.post(url, data=b'{"comment": ', headers=headers, timeout=5)
    assert r.status_code == 400 and r.json()["error"].startswith("malformed JSON body")
    r = requests.post(url, data=b"[1, 2]", headers=headers, timeout=5)
    assert r.status_code == 400 and "object" in r.json()["error"]
    r = requests.post(url, data=b"\xff\xfe", headers=headers, timeout=5)
    assert r.status_code == 400
    r = requests.post(url, data=b" " * (MAX_BODY + 1), headers=headers, timeout=10)
    assert r.status_code == 413
    # The connection is still usable after each error (bodies are drained).
    with requests.Session() as s:
        for _ in range(3):
            assert s.post(url, data=b"nope", headers=headers, timeout=5).status_code == 400
        assert s.get(f"{api}/livez", timeout=5).status_code == 200


def test_unknown_route_and_wrong_method(api: str) -> None:
    r = requests.get(f"{api}/nope", timeout=5)
    assert r.status_code == 404 and "no such endpoint" in r.json()["error"]
    r = requests.get(f"{api}/api/v1/pause", timeout=5)
    assert r.status_code == 405 and r.headers["Allow"] == "POST"
    r = requests.delete(f"{api}/api/v1/incidents/1", timeout=5)
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD"
    assert r.headers["Content-Type"] == "application/problem+json" and r.json()["status"] == 405
    r = requests.post(f"{api}/metrics", headers=AUTH, timeout=5)
    assert r.status_code == 405


def test_requests_are_logged_at_debug_without_the_authorization_header(api: str) -> None:
    with structlog.testing.capture_logs() as logs:
        requests.post(f"{api}/api/v1/pause", headers=AUTH, timeout=5)
        requests.get(f"{api}/livez", timeout=5)
        # the server logs a request after answering it: give its thread a moment under a loaded machine
        deadline = time.monotonic() + 5
        while sum(e["event"] == "http.request" for e in logs) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    requests_logged = [e for e in logs if e["event"] == "http.request"]
    assert {(e["method"], e["path"], e["status"]) for e in requests_logged} >= {
        ("POST", "/api/v1/pause", 200),
        ("GET", "/livez", 200),
    }
    assert all(e["log_level"] == "debug" for e in requests_logged)
    assert TOKEN not in json.dumps(logs, default=str)


def test_start_stop_and_bind_errors(backend: FakeBackend, registry: CollectorRegistry) -> None:
    server = _start(backend, registry)
    host, port = server.address
    assert host == "127.0.0.1" and port > 0
    clash = ApiServer(backend, registry, listen=f"127.0.0.1:{port}")
    with pytest.raises(AiopsError, match="cannot listen on"):
        clash.start()
    server.stop()
    server.stop()  # idempotent
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_listen_parsing() -> None:
    assert parse_listen("[::1]:9464") == ("::1", 9464)
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen("localhost")
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen("127.0.0.1:99999")
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("") and not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")


def test_uvicorn_leaves_signals_and_logging_to_the_daemon(
    backend: FakeBackend, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    """The server runs on its own thread: the daemon keeps its SIGTERM/SIGHUP handlers, and no access log."""
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    server = _start(backend, registry, listen="[::1]:0")
    try:
        assert server.url.startswith("http://[::1]:")
        with caplog.at_level(logging.DEBUG):
            assert requests.get(f"{server.url}/livez", timeout=5).text == "ok"
            head = requests.head(f"{server.url}/livez", timeout=5)
        assert head.status_code == 200 and head.content == b""
        assert {sig: signal.getsignal(sig) for sig in before} == before
        assert not [r for r in caplog.records if r.name.startswith("uvicorn")]
    finally:
        server.stop()
