"""Verdicts over HTTP and through signed links: the real server and the real feedback service over a SQLite
store; bad bodies are 400 problems naming the field, writes need the token, forged or expired links are 403,
and a link's GET never records anything."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from prometheus_client import CollectorRegistry

from aiops.approval_links import signed_path as approval_path
from aiops.config.loader import parse_config
from aiops.daemon import Daemon
from aiops.engine.messages import build_message
from aiops.feedback import Feedback, FeedbackFacade
from aiops.notifiers._http import link_list
from aiops.server import ApiServer
from aiops.store.store import Store
from aiops.store.verdicts import verdicts_of_incidents
from aiops.testing import ScriptedSource, register_test_plugins, unregister_test_plugins
from aiops.verdict_links import signed_path, verify
from tests.integration.test_store import _incident
from tests.unit.test_engine import BASE, Harness
from tests.unit.test_http import FakeBackend
from tests.unit.test_http_contract import AUTH, TOKEN, _serve


class StoreBackend(FeedbackFacade, FakeBackend):
    """The fake daemon for the routes this file does not test; incidents and verdicts from a real store."""

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self.feedback = Feedback(store, time.time, lambda: ["c", "latency"])

    def get_incident(self, incident_id: int) -> dict[str, Any] | None:
        row = self.store.get_incident(incident_id)
        return row.to_json() if row is not None else None


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path}/store.db")
    s.migrate()
    _incident(s)
    yield s
    s.close()


@pytest.fixture
def api(store: Store) -> Iterator[str]:
    yield from _serve(StoreBackend(store))


def _problem(resp: requests.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = resp.json()
    assert body.get("field") == field, body
    return body


def test_mark_an_incident_and_list_the_verdicts(api: str, store: Store) -> None:
    resp = requests.post(f"{api}/api/v1/incidents/1/verdict", json={"verdict": "noise", "comment": "flaky probe"},
                         headers=AUTH, timeout=5)
    assert resp.status_code == 201, resp.text
    assert resp.json()["verdict"] == "noise" and resp.json()["actor"] == "api"
    resp = requests.post(f"{api}/api/v1/incidents/1/verdict", json={"verdict": "useful", "actor": "ana"},
                         headers=AUTH, timeout=5)
    assert resp.json()["actor"] == "api:ana"
    missed = requests.post(f"{api}/api/v1/verdicts/missed", headers=AUTH, timeout=5,
                           json={"check": "latency", "from": "2024-01-01T00:00:00Z", "to": "2024-01-01T01:00:00Z"})
    assert missed.status_code == 201, missed.text
    assert missed.json()["incident_id"] is None and missed.json()["ends_at"] - missed.json()["starts_at"] == 3600
    kinds = [v["verdict"] for v in requests.get(f"{api}/api/v1/verdicts", timeout=5).json()["verdicts"]]
    assert kinds == ["missed", "useful", "noise"]  # newest first
    only = requests.get(f"{api}/api/v1/verdicts?check=c&verdict=noise", timeout=5).json()["verdicts"]
    assert [(v["verdict"], v["comment"]) for v in only] == [("noise", "flaky probe")]
    assert [v.verdict.value for v in verdicts_of_incidents(store, [1])[1]] == ["noise", "useful"]
    eff = requests.get(f"{api}/api/v1/effectiveness", timeout=5).json()
    assert eff["actions"] == [] and eff["since"] < time.time() - 29 * 86400


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/incidents/1/verdict", {"verdict": "meh"}, "verdict"),
        ("/api/v1/incidents/1/verdict", {}, "verdict"),
        ("/api/v1/incidents/1/verdict", {"verdict": "missed"}, "verdict"),
        ("/api/v1/incidents/1/verdict", {"verdict": "noise", "colour": "red"}, "colour"),
        ("/api/v1/incidents/1/verdict", {"verdict": "noise", "comment": "x" * 2001}, "comment"),
        ("/api/v1/incidents/1/verdict", {"verdict": "noise", "actor": "a b"}, "actor"),
        ("/api/v1/verdicts/missed", {"check": "latency", "from": "yesterday", "to": 5}, "from"),
        ("/api/v1/verdicts/missed", {"check": "latency", "from": 1}, "to"),
        ("/api/v1/verdicts/missed", {"check": "", "from": 1, "to": 2}, "check"),
        ("/api/v1/verdicts/missed", {"check": "latency", "from": True, "to": 2}, "from"),
    ],
)
def test_invalid_bodies_are_400_problems_naming_the_field(
    api: str, path: str, body: dict[str, Any], field: str
) -> None:
    _problem(requests.post(f"{api}{path}", json=body, headers=AUTH, timeout=5), 400, field)


def test_refusals_of_the_backend_and_of_the_query(api: str) -> None:
    _problem(requests.post(f"{api}/api/v1/incidents/7/verdict", json={"verdict": "noise"}, headers=AUTH, timeout=5),
             404)
    unknown = requests.post(f"{api}/api/v1/verdicts/missed", json={"check": "nope", "from": 1, "to": 2},
                            headers=AUTH, timeout=5)
    assert "unknown check 'nope'; known: c, latency" in _problem(unknown, 400)["detail"]
    backwards = requests.post(f"{api}/api/v1/verdicts/missed", json={"check": "c", "from": 9, "to": 2},
                              headers=AUTH, timeout=5)
    assert "must be after" in _problem(backwards, 400)["detail"]
    _problem(requests.get(f"{api}/api/v1/verdicts?verdict=great", timeout=5), 400, "verdict")
    _problem(requests.get(f"{api}/api/v1/verdicts?limit=0", timeout=5), 400, "limit")
    _problem(requests.get(f"{api}/api/v1/effectiveness?since=soon", timeout=5), 400, "since")


def test_writes_need_the_token(api: str, store: Store) -> None:
    for path, body in (("/api/v1/incidents/1/verdict", {"verdict": "noise"}),
                       ("/api/v1/verdicts/missed", {"check": "c", "from": 1, "to": 2})):
        assert requests.post(f"{api}{path}", json=body, timeout=5).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert requests.post(f"{api}{path}", json=body, headers=wrong, timeout=5).status_code == 401
    assert verdicts_of_incidents(store, [1]) == {}
    server = ApiServer(StoreBackend(store), CollectorRegistry(), "127.0.0.1:0", None)  # writes and links are off
    server.start()
    try:
        refused = requests.post(f"{server.url}/api/v1/incidents/1/verdict", json={"verdict": "noise"}, timeout=5)
        assert refused.status_code == 403
        assert requests.get(server.url + signed_path("anything", 1, "noise"), timeout=5).status_code == 403
    finally:
        server.stop()


def test_a_backend_without_a_store_answers_501() -> None:
    for url in _serve(FakeBackend()):
        resp = requests.post(f"{url}/api/v1/incidents/1/verdict", json={"verdict": "noise"}, headers=AUTH, timeout=5)
        _problem(resp, 501)


def test_signed_link_confirms_on_get_and_records_on_post(api: str, store: Store) -> None:
    link = api + signed_path(TOKEN, 1, "noise")
    page = requests.get(link, timeout=5)
    assert page.status_code == 200 and "Mark incident 1 as noise?" in page.text and "x is high" in page.text
    assert "<form method='post'>" in page.text
    assert verdicts_of_incidents(store, [1]) == {}  # a prefetch records nothing
    done = requests.post(link, timeout=5)
    assert done.status_code == 200 and "Incident 1 marked noise" in done.text
    assert requests.post(link, timeout=5).status_code == 200  # a double click counts once
    (recorded,) = verdicts_of_incidents(store, [1])[1]
    assert (recorded.verdict.value, recorded.actor) == ("noise", "verdict-link")


def test_forged_expired_and_borrowed_links_are_403(api: str, store: Store) -> None:
    good = urlsplit(signed_path(TOKEN, 1, "noise"))
    query = {k: v[0] for k, v in parse_qs(good.query).items()}
    expired = signed_path(TOKEN, 1, "noise", now=time.time() - 8 * 86400)
    forged = [
        signed_path("another-token", 1, "noise"),  # signed with another key
        f"/verdict/1?verdict=useful&expires={query['expires']}&sig={query['sig']}",  # verdict changed
        f"/verdict/2?verdict=noise&expires={query['expires']}&sig={query['sig']}",  # incident changed
        f"/verdict/1?verdict=noise&expires={int(query['expires']) + 1}&sig={query['sig']}",  # expiry moved
        f"/verdict/1?verdict=missed&expires={query['expires']}&sig={query['sig']}",
        "/verdict/1?verdict=noise",
    ]
    # an approval link's signature (same key) must not validate a verdict link
    approval = {k: v[0] for k, v in parse_qs(urlsplit(approval_path(TOKEN, 1, "approve")).query).items()}
    forged.append(f"/verdict/1?verdict=noise&expires={approval['expires']}&sig={approval['sig']}")
    for path in [expired, *forged]:
        for method in ("GET", "POST"):
            resp = requests.request(method, api + path, timeout=5)
            assert resp.status_code == 403, (method, path, resp.text)
    assert "link expired" in requests.get(api + expired, timeout=5).json()["detail"]
    assert verdicts_of_incidents(store, [1]) == {}


def test_every_message_carries_verdict_links_that_verify(store: Store) -> None:
    row = store.get_incident(1)
    assert row is not None
    message = build_message("firing", row, "x is high", dedup_key="k", external_url="https://aiops.example/",
                            link_token=TOKEN)
    assert [label for label, _url in link_list(message)] == ["Open incident", "Mark useful", "Mark noise"]
    for verdict in ("useful", "noise"):
        url = urlsplit(message.links[verdict])
        assert url.netloc == "aiops.example" and url.path == "/verdict/1"
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        assert verify(TOKEN, 1, q["verdict"], q["expires"], q["sig"]) is None
    quiet = build_message("firing", row, "x", dedup_key="k", external_url="https://aiops.example", link_token=None)
    assert set(quiet.links) == {"incident"}  # without the API token there is nothing to sign with


def test_engine_messages_carry_verdict_links_and_the_daemon_serves_them(tmp_path: Path) -> None:
    """The whole chain in one process: the engine writes the links into firing and resolved messages, the
    daemon (as the API's backend) records the verdict from the link, shows it with the incident and counts it
    in /metrics."""
    register_test_plugins()
    ScriptedSource.reset()
    try:
        text = (
            f"store: {{url: 'sqlite:///{tmp_path}/aiops.db'}}\n"
            f"server: {{token: {TOKEN}, external_url: 'https://aiops.example'}}\n"
            + BASE % "      notify: [capture]\n      verify: {settle: 5s}\n      actions: [{type: recording}]"
        )
        h = Harness(tmp_path, text)
        h.tick(500)
        h.tick(55)
        assert h.messages() == ["firing", "resolved"]
        for message in h.runtime.notifiers["capture"].messages:
            assert set(message.links) == {"incident", "useful", "noise"}, message.links
        noise_link = h.runtime.notifiers["capture"].messages[-1].links["noise"]
        daemon = Daemon(parse_config(text, "aiops.yaml", env={}), registry=CollectorRegistry())
        server = ApiServer(daemon, daemon.registry, "127.0.0.1:0", TOKEN)
        server.start()
        try:
            path = noise_link.removeprefix("https://aiops.example")
            assert requests.post(server.url + path, timeout=5).status_code == 200
            incident = requests.get(f"{server.url}/api/v1/incidents/1", timeout=5).json()
            assert [(v["verdict"], v["actor"]) for v in incident["verdicts"]] == [("noise", "verdict-link")]
            listed = requests.get(f"{server.url}/api/v1/incidents", timeout=5).json()["incidents"]
            assert [(i["id"], i["verdict"]) for i in listed] == [(1, "noise")]
            metrics = requests.get(f"{server.url}/metrics", timeout=5).text
            assert 'aiops_incident_verdicts_total{check="latency",verdict="noise"} 1.0' in metrics
            assert 'aiops_remediation_runs{action="recording",target="recording"} 1.0' not in metrics  # 2023: too old
            eff = requests.get(f"{server.url}/api/v1/effectiveness?since=2000d", timeout=5).json()["actions"]
            assert [(e["action"], e["healed"], e["runs"]) for e in eff] == [("recording", 1, 1)]
        finally:
            server.stop()
            daemon.store.close()
    finally:
        unregister_test_plugins()
