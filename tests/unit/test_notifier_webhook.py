"""The webhook notifier against a real local HTTP server."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from aiops.errors import DeliveryError
from aiops.http_outcome import parse_retry_after
from aiops.notifiers.webhook import WebhookNotifier
from aiops.plugins import NOTIFIERS, build
from aiops.signing import verify
from aiops.types import IncidentState, IncidentView, Message, Severity

SECRET = "sign-me-0123456789"
PATH_SECRET = "pathsecret42xyz"
QUERY_SECRET = "querytoken99abc"
HEADER_SECRET = "hdrsecret77qq"


@dataclass
class Receiver:
    """What the server answers (status, headers, delay) and what it received."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    reply: bytes = b"ok"
    received: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.received.append(
                {
                    "path": self.path,
                    "headers": dict(self.headers.items()),
                    "body": body,
                    "verified": verify(SECRET.encode(), body, self.headers.get("X-Aiops-Signature"), time.time()),
                }
            )
            if state.delay:
                time.sleep(state.delay)
            try:
                self.send_response(state.status)
                for k, v in state.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(state.reply)))
                self.end_headers()
                self.wfile.write(state.reply)
            except OSError:
                pass  # the client gave up (timeout test)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    url = f"http://user:{PATH_SECRET}@127.0.0.1:{server.server_address[1]}/hook/{PATH_SECRET}?token={QUERY_SECRET}"
    try:
        yield state, url
    finally:
        server.shutdown()
        server.server_close()


def message() -> Message:
    incident = IncidentView(
        id=42,
        fingerprint="abc123",
        check="disk-full",
        state=IncidentState.FIRING,
        severity=Severity.CRITICAL,
        summary="disk 97% full",
        labels={"path": "/"},
        opened_at=1700000000.0,
        attempts=1,
        rung=0,
    )
    return Message(
        event="firing",
        incident=incident,
        title="disk-full firing",
        text="disk 97% full",
        dedup_key="disk-full/abc123/firing",
        details={"value": float("nan"), "n": 1},
        links={"incident": "http://aiops/incidents/42"},
        idempotency_key="disk-full/abc123/firing/7",
    )


def notifier(url: str, **kw: Any) -> WebhookNotifier:
    params = {"url": url, "secret": SECRET, "timeout": "2s", "headers": {"X-Team-Token": HEADER_SECRET}, **kw}
    result: WebhookNotifier = build(NOTIFIERS, "webhook", params)
    return result


def assert_no_secret(text: str) -> None:
    """Alertmanager's AssertNotifyLeaksNoSecret: no secret, in any form, in an error message."""
    for secret in (SECRET, PATH_SECRET, QUERY_SECRET, HEADER_SECRET):
        assert secret not in text, f"{secret!r} leaked in {text!r}"


def test_delivers_signed_json(receiver: tuple[Receiver, str]) -> None:
    state, url = receiver
    delivery = notifier(url).send(message())
    assert delivery.status == 200
    assert_no_secret(delivery.receiver + delivery.detail)
    (req,) = state.received
    assert req["verified"] is True
    assert req["headers"]["Content-Type"] == "application/json"
    assert req["headers"]["X-Aiops-Dedup-Key"] == "disk-full/abc123/firing"
    assert req["headers"]["Idempotency-Key"] == "disk-full/abc123/firing/7"  # the same on every attempt
    assert req["headers"]["X-Team-Token"] == HEADER_SECRET
    body = json.loads(req["body"])
    assert body["version"] == "1" and body["event"] == "firing"
    assert body["incident"] == {
        "id": 42,
        "fingerprint": "abc123",
        "check": "disk-full",
        "state": "firing",
        "severity": "critical",
        "summary": "disk 97% full",
        "labels": {"path": "/"},
        "opened_at": 1700000000.0,
        "attempts": 1,
        "rung": 0,
    }
    assert body["details"] == {"value": None, "n": 1}  # NaN is not JSON
    assert body["links"] == {"incident": "http://aiops/incidents/42"}
    assert abs(body["sent_at"] - time.time()) < 10
    assert body["idempotency_key"] == "disk-full/abc123/firing/7"
    assert set(body) == {
        "version",
        "event",
        "dedup_key",
        "idempotency_key",
        "title",
        "text",
        "incident",
        "details",
        "links",
        "sent_at",
    }


def test_unsigned_without_secret(receiver: tuple[Receiver, str]) -> None:
    state, url = receiver
    notifier(url, secret=None).send(message())
    assert "X-Aiops-Signature" not in state.received[0]["headers"]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_recoverable(receiver: tuple[Receiver, str], status: int) -> None:
    state, url = receiver
    state.status = status
    state.reply = f"upstream broke near {url}".encode()  # a receiver that echoes the URL must not leak it
    with pytest.raises(DeliveryError) as info:
        notifier(url).send(message())
    assert info.value.recoverable is True
    assert info.value.reason == f"http_{status}"
    assert_no_secret(str(info.value))


def test_429_with_retry_after_seconds_and_date(receiver: tuple[Receiver, str]) -> None:
    state, url = receiver
    state.status = 429
    state.headers = {"Retry-After": "17"}
    with pytest.raises(DeliveryError) as info:
        notifier(url).send(message())
    assert (info.value.recoverable, info.value.reason, info.value.retry_after) == (True, "http_429", 17.0)
    state.headers = {"Retry-After": formatdate(time.time() + 120, usegmt=True)}
    with pytest.raises(DeliveryError) as info:
        notifier(url).send(message())
    assert info.value.retry_after is not None and 100 <= info.value.retry_after <= 121
    assert_no_secret(str(info.value))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 413, 422])
def test_final_statuses(receiver: tuple[Receiver, str], status: int) -> None:
    state, url = receiver
    state.status = status
    state.reply = f"bad request {SECRET} {url}".encode()
    with pytest.raises(DeliveryError) as info:
        notifier(url).send(message())
    assert info.value.recoverable is False
    assert info.value.reason == f"http_{status}"
    assert_no_secret(str(info.value))


def test_timeout_is_recoverable(receiver: tuple[Receiver, str]) -> None:
    state, url = receiver
    state.delay = 1.5
    start = time.monotonic()
    with pytest.raises(DeliveryError) as info:
        notifier(url, timeout="300ms").send(message())
    assert time.monotonic() - start < 1.4
    assert (info.value.recoverable, info.value.reason) == (True, "timeout")
    assert_no_secret(str(info.value))


def test_connection_refused_is_recoverable() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    url = f"http://user:{PATH_SECRET}@127.0.0.1:{port}/hook/{PATH_SECRET}?token={QUERY_SECRET}"
    with pytest.raises(DeliveryError) as info:
        notifier(url).send(message())
    assert (info.value.recoverable, info.value.reason) == (True, "connection")
    assert "Connection" in str(info.value)
    assert_no_secret(str(info.value))
    assert_no_secret(repr(info.value))


def test_missing_secret_file_is_final(tmp_path: Any, receiver: tuple[Receiver, str]) -> None:
    _, url = receiver
    with pytest.raises(DeliveryError) as info:
        notifier(url, secret=None, secret_file=str(tmp_path / "nope")).send(message())
    assert info.value.recoverable is False
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    notifier(url, secret=None, secret_file=str(secret_file)).send(message())
    assert receiver[0].received[-1]["verified"] is True


def test_params_validation_never_echoes_the_url() -> None:
    with pytest.raises(ValueError) as info:
        WebhookNotifier.Params.model_validate({"url": f"ftp://x/{PATH_SECRET}"})
    assert "http" in str(info.value)
    with pytest.raises(ValueError, match="either secret or secret_file"):
        WebhookNotifier.Params.model_validate({"url": "http://x", "secret": "a", "secret_file": "b"})
    params = WebhookNotifier.Params.model_validate({"url": "http://x", "timeout": "1m"})
    assert params.model_dump()["timeout"] == 60.0


def test_retry_after_parsing() -> None:
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after("-5") == 0.0
    assert parse_retry_after("nan") is None
    assert parse_retry_after(formatdate(1000.0, usegmt=True), now=900.0) == 100.0
