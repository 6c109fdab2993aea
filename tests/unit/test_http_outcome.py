"""The one HTTP outcome classifier, and every notifier and remediation that speaks HTTP agreeing with it."""

from __future__ import annotations

from collections.abc import Iterator
from email.utils import formatdate
from typing import Any

import pytest
import requests
from aiops_remediations.airflow import AirflowClient
from aiops_remediations.serving import reload_serving
from aiops_remediations.webhook import WebhookRemediation

from aiops.errors import DeliveryError, RemediationError
from aiops.http_outcome import HttpOutcome, classify_error, classify_status, parse_retry_after
from aiops.notifiers.slack import SlackNotifier
from aiops.notifiers.webhook import WebhookNotifier
from aiops.types import IncidentState, IncidentView, Message, Severity
from tests.servers import WebhookReceiver
from tests.unit.test_registry import ctx, incident

NOW = 1_000_000.0


@pytest.mark.parametrize(
    ("status", "headers", "ok", "retryable", "retry_after"),
    [
        (200, {}, True, False, None),
        (204, {"Retry-After": "5"}, True, False, None),  # a success never waits
        (301, {}, False, False, None),  # redirects are not followed: final
        (400, {}, False, False, None),
        (401, {}, False, False, None),
        (404, {}, False, False, None),
        (409, {}, False, False, None),
        (410, {}, False, False, None),
        (422, {}, False, False, None),
        (408, {}, False, True, None),  # the server gave up waiting for the request
        (425, {}, False, True, None),  # refused as TLS early data: send again
        (429, {"Retry-After": "30"}, False, True, 30.0),
        (429, {"retry-after": formatdate(NOW + 90, usegmt=True)}, False, True, 90.0),  # HTTP-date form
        (429, {"Retry-After": "soon"}, False, True, None),  # unreadable: the caller's backoff decides
        (429, {"Retry-After": "9999999"}, False, True, 86400.0),  # capped at a day
        (500, {}, False, True, None),
        (503, {"Retry-After": "-3"}, False, True, 0.0),
        (400, {"Retry-After": "30"}, False, False, None),  # final answers carry no wait
    ],
)
def test_classify_status(
    status: int, headers: dict[str, str], ok: bool, retryable: bool, retry_after: float | None
) -> None:
    outcome = classify_status(status, headers, now=NOW)
    assert (outcome.ok, outcome.retryable, outcome.retry_after) == (ok, retryable, retry_after)
    assert outcome.reason == f"http_{status}" and outcome.status == status


@pytest.mark.parametrize(
    ("exc", "retryable", "reason"),
    [
        (requests.ConnectTimeout(), True, "timeout"),
        (requests.ReadTimeout(), True, "timeout"),
        (requests.ConnectionError(ConnectionRefusedError(111, "refused")), True, "connection"),
        (requests.exceptions.InvalidURL("no host"), False, "request"),
    ],
)
def test_classify_error(exc: requests.RequestException, retryable: bool, reason: str) -> None:
    outcome = classify_error(exc, timeout=3)
    assert (outcome.ok, outcome.retryable, outcome.reason, outcome.status) == (False, retryable, reason, None)
    assert outcome.detail


def test_retry_after_edge_values() -> None:
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after("nan") is None
    assert parse_retry_after("  ") is None


# -- the callers -----------------------------------------------------------------------------------------------

CALLER_STATUSES = [200, 404, 408, 425, 429, 503]


def _message() -> Message:
    inc = IncidentView(1, "fp", "latency", IncidentState.FIRING, Severity.WARNING, "slow", {}, 0.0)
    return Message(event="firing", title="t", text="x", incident=inc, dedup_key="k")


def _notifier_verdict(notifier: Any) -> tuple[bool, bool, float | None]:
    try:
        notifier.send(_message())
    except DeliveryError as exc:
        return False, exc.recoverable, exc.retry_after
    return True, False, None


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    """One real local HTTP server for the module (each test sets the answer it wants)."""
    got = WebhookReceiver()
    yield got
    got.close()


@pytest.mark.parametrize("status", CALLER_STATUSES)
def test_every_http_caller_classifies_like_the_classifier(receiver: WebhookReceiver, status: int) -> None:
    receiver.set_default(status, {"Retry-After": "7"})
    base = receiver.url
    expected = classify_status(status, {"Retry-After": "7"})
    want = (expected.ok, expected.retryable)
    waits = expected.retry_after

    for notifier in (WebhookNotifier(url=base + "/hook"), SlackNotifier(url=base + "/slack")):
        assert _notifier_verdict(notifier) == (*want, waits), type(notifier).__name__

    rem = WebhookRemediation(url=base + "/runbook")
    outcome = rem.execute(rem.plan(incident()), ctx("k"))
    assert (outcome.ok, outcome.recoverable) == want
    assert outcome.details.get("retry_after") == waits

    client = AirflowClient(base)
    try:
        client.latest_run("dag")
        airflow: tuple[bool, bool] = (True, False)
    except RemediationError as exc:
        airflow = (False, exc.recoverable)
    assert airflow == want

    failure = reload_serving(url=base + "/reload", argv=None, payload={}, key="k", timeout=5)
    assert (failure is None, failure is not None and failure.retryable) == want  # retrain/rollback reload hook


def test_network_failures_are_retryable_for_every_caller() -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, not listening: connection refused
    try:
        expected: HttpOutcome = classify_error(requests.ConnectionError())
        assert _notifier_verdict(WebhookNotifier(url=url, timeout=2)) == (False, expected.retryable, None)
        rem = WebhookRemediation(url=url, timeout=2)
        assert rem.execute(rem.plan(incident()), ctx("k")).recoverable is expected.retryable
        with pytest.raises(RemediationError) as info:
            AirflowClient(url, timeout=2).latest_run("dag")
        assert info.value.recoverable is expected.retryable
        failure = reload_serving(url=url, argv=None, payload={}, key="k", timeout=2)
        assert failure is not None and failure.retryable is expected.retryable
    finally:
        sock.close()
