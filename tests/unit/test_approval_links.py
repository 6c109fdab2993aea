"""Signed approve/deny links: an approval message carries them, opening one only shows a confirmation page,
its button decides, and a tampered or expired link is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry

from aiops.approval_links import signed_path
from aiops.server import ApiServer
from aiops.testing import ScriptedSource, register_test_plugins, unregister_test_plugins
from tests.unit.test_engine import BASE, Harness
from tests.unit.test_http import FakeBackend

TOKEN = "s3cret-token"


@pytest.fixture
def server() -> Iterator[tuple[ApiServer, FakeBackend]]:
    backend = FakeBackend()
    srv = ApiServer(backend, CollectorRegistry(), listen="127.0.0.1:0", token=TOKEN)
    srv.start()
    try:
        yield srv, backend
    finally:
        srv.stop()


def _url(srv: ApiServer, path: str) -> str:
    host, port = srv.address
    return f"http://{host}:{port}{path}"


def test_get_shows_a_page_and_decides_nothing(server: tuple[ApiServer, FakeBackend]) -> None:
    srv, backend = server
    resp = requests.get(_url(srv, signed_path(TOKEN, 10, "approve")), timeout=5)
    assert resp.status_code == 200 and "<form method='post'>" in resp.text
    assert not [c for c in backend.calls if c[0] == "approve"]


def test_post_approves_and_deny_denies(server: tuple[ApiServer, FakeBackend]) -> None:
    srv, backend = server
    resp = requests.post(_url(srv, signed_path(TOKEN, 10, "approve")), timeout=5)  # no bearer token needed
    assert resp.status_code == 200 and "pending" in resp.text
    assert ("approve", 10, "approval-link", True) in backend.calls
    backend.actions[10]["state"] = "awaiting_approval"
    requests.post(_url(srv, signed_path(TOKEN, 10, "deny")), timeout=5)
    assert ("approve", 10, "approval-link", False) in backend.calls


def test_tampered_expired_or_foreign_links_are_refused(server: tuple[ApiServer, FakeBackend]) -> None:
    srv, backend = server
    good = signed_path(TOKEN, 10, "approve")
    for bad in (
        good.replace("/decide/10", "/decide/11"),
        good.replace("decision=approve", "decision=deny"),
        signed_path("another-token", 10, "approve"),
        signed_path(TOKEN, 10, "approve", now=0.0),
    ):
        assert requests.post(_url(srv, bad), timeout=5).status_code == 403
    assert not [c for c in backend.calls if c[0] == "approve"]


def test_approval_message_carries_signed_links(tmp_path: Path) -> None:
    register_test_plugins()
    ScriptedSource.reset()
    try:
        text = f"server: {{token: {TOKEN}, external_url: 'https://aiops.example'}}\n" + BASE % (
            "      notify: [capture]\n      actions: [{type: recording, mode: approve}]"
        )
        h = Harness(tmp_path, text)
        h.tick(500)
        h.outbox.tick()
        approval = [m for m in h.runtime.notifiers["capture"].messages if m.event == "approval"]
        assert approval
        links = approval[0].links
        assert links["approve"].startswith("https://aiops.example/decide/") and "sig=" in links["approve"]
        assert "decision=deny" in links["deny"]
    finally:
        unregister_test_plugins()
