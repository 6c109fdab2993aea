"""The HTTP API's contract: the OpenAPI description matches what the server enforces, hostile input is a 400
problem naming the field (never a 500), answers are the same on SQLite and PostgreSQL, and no answer carries
SQL, a traceback or a filesystem path."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
import sqlalchemy as sa
import structlog
from prometheus_client import CollectorRegistry

from aiops.approval_links import signed_path
from aiops.cluster.membership import Member
from aiops.effectiveness import Effectiveness
from aiops.errors import AiopsError, StoreError
from aiops.http.endpoints import ENDPOINTS, Auth
from aiops.server import ApiServer
from aiops.store.records import PushedEvent
from aiops.store.store import Store
from aiops.store.verdicts import Verdict, VerdictKind
from tests.unit.test_http import FakeBackend

TOKEN = "c0ntract-t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class PushBackend(FakeBackend):
    """The fake daemon plus the push endpoints, over a real store when one is given."""

    def __init__(self, store: Store | None = None) -> None:
        super().__init__()
        self.store = store
        self.pushed: list[PushedEvent] = []

    def append_events(self, rows: list[PushedEvent]) -> dict[str, Any]:
        ids = self.store.append_events(rows, 1000.0) if self.store is not None else list(range(1, len(rows) + 1))
        self.pushed += rows
        return {"accepted": len(ids), "first_id": ids[0] if ids else None, "last_id": ids[-1] if ids else None}

    # FeedbackBackend, in memory (the real one, over a store, is tested in tests/unit/test_verdicts_api.py)
    def record_verdict(self, incident_id: int, verdict: str, actor: str, comment: str) -> dict[str, Any]:
        incident = self._incident(incident_id)
        return self._verdict(verdict, str(incident["check"]), incident_id, actor, comment)

    def record_missed(self, check: str, starts_at: float, ends_at: float, actor: str, comment: str) -> dict[str, Any]:
        return self._verdict("missed", check, None, actor, comment, starts_at, ends_at)

    def _verdict(
        self, kind: str, check: str, incident_id: int | None, actor: str, comment: str, start: float = 0.0,
        end: float = 1.0,
    ) -> dict[str, Any]:
        self.calls.append(("verdict", kind, check, incident_id, actor, comment))
        return Verdict(len(self.calls), VerdictKind(kind), check, incident_id, None, start, end, comment, actor,
                       2.0).to_dict()

    def list_verdicts(self, check: str | None, verdict: str | None, limit: int) -> list[dict[str, Any]]:
        return [self._verdict("noise", check or "cpu", 1, "api", "")][:limit]

    def effectiveness(self, since: float) -> list[dict[str, Any]]:
        return [Effectiveness("command", "svc", 2, 1, 1, 0, 0.5, 30.0).to_dict()]

    # ClusterBackend, in memory (the real one, over a store, is tested in tests/e2e/test_cluster_membership.py)
    @property
    def membership(self) -> PushBackend:
        return self

    def view(self) -> list[dict[str, Any]]:
        return [Member("node-a:1:2.0", "node-a", 1, 2.0, 3.0, "0.1.0", "127.0.0.1:9464").to_dict(4.0)]


def _serve(backend: FakeBackend) -> Iterator[str]:
    server = ApiServer(backend, CollectorRegistry(), "127.0.0.1:0", TOKEN)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def backend() -> PushBackend:
    return PushBackend()


@pytest.fixture
def api(backend: PushBackend) -> Iterator[str]:
    yield from _serve(backend)


# -- OpenAPI -------------------------------------------------------------------------------------------------

# One request per /api/v1 operation that the spec says is valid; the server must accept each of them.
VALID_REQUESTS: dict[tuple[str, str], tuple[str, dict[str, Any] | None]] = {
    ("get", "/api/v1/incidents"): ("/api/v1/incidents?state=firing&limit=5", None),
    ("get", "/api/v1/incidents/{id}"): ("/api/v1/incidents/1", None),
    ("post", "/api/v1/incidents/{id}/ack"): ("/api/v1/incidents/1/ack", {"comment": "on it"}),
    ("post", "/api/v1/incidents/{id}/silence"): ("/api/v1/incidents/2/silence", {"duration": "1h", "comment": "m"}),
    ("get", "/api/v1/actions"): ("/api/v1/actions?limit=1000", None),
    ("post", "/api/v1/actions/{id}/approve"): ("/api/v1/actions/10/approve", {}),
    ("post", "/api/v1/actions/{id}/deny"): ("/api/v1/actions/99/deny", None),  # 404: valid, just unknown
    ("post", "/api/v1/pause"): ("/api/v1/pause", {}),
    ("post", "/api/v1/resume"): ("/api/v1/resume", None),
    ("get", "/api/v1/status"): ("/api/v1/status", None),
    ("post", "/api/v1/ingest"): (
        "/api/v1/ingest",
        {"stream": "jobs", "points": [{"name": "rows", "value": 3, "timestamp": 10, "labels": {"job": "etl"}}],
         "events": [{"type": "done", "timestamp": "2024-01-01T00:00:00Z", "data": {"ok": True}}]},
    ),
    ("post", "/api/v1/alertmanager"): (
        "/api/v1/alertmanager",
        {"version": "4", "status": "firing", "receiver": "aiops", "groupKey": "{}",
         "alerts": [{"status": "firing", "labels": {"alertname": "HighLatency", "job": "api"},
                     "annotations": {"summary": "slow"}, "startsAt": "2024-01-01T00:00:00Z",
                     "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "ab12"}]},
    ),
    ("post", "/api/v1/incidents/{id}/verdict"): ("/api/v1/incidents/1/verdict", {"verdict": "noise", "comment": "x"}),
    ("post", "/api/v1/verdicts/missed"): (
        "/api/v1/verdicts/missed",
        {"check": "cpu", "from": "2024-01-01T00:00:00Z", "to": 1704070800, "actor": "alice"},
    ),
    ("get", "/api/v1/verdicts"): ("/api/v1/verdicts?check=cpu&verdict=noise&limit=5", None),
    ("get", "/api/v1/effectiveness"): ("/api/v1/effectiveness?since=7d", None),
    ("get", "/api/v1/cluster"): ("/api/v1/cluster", None),
    ("get", "/api/v1/openapi.json"): ("/api/v1/openapi.json", None),
}


def _validator(spec: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """A validator for ``schema`` whose ``#/components/...`` references resolve inside ``spec``."""
    root = {"components": spec["components"], **schema}
    jsonschema.Draft202012Validator.check_schema(root)
    return jsonschema.Draft202012Validator(root)


def test_openapi_lists_every_api_route_with_its_auth_and_schemas(api: str, backend: PushBackend) -> None:
    spec = requests.get(f"{api}/api/v1/openapi.json", timeout=5).json()
    assert spec["openapi"].startswith("3.1")
    declared = {(e.method.lower(), e.path): e for e in ENDPOINTS if e.path.startswith("/api/v1/")}
    operations = {(m, p) for p, ops in spec["paths"].items() for m in ops}
    assert operations == {*declared, ("get", "/api/v1/openapi.json")}
    assert set(VALID_REQUESTS) == operations, "every operation has a valid request exercised below"
    for (method, path), (url, body) in VALID_REQUESTS.items():
        op = spec["paths"][path][method]
        endpoint = declared.get((method, path))
        needs_token = endpoint is not None and endpoint.auth is Auth.BEARER
        assert op["security"] == ([{"bearer": []}] if needs_token else []), path
        if needs_token:  # the spec says a token is needed: without it the server refuses
            assert requests.request(method, f"{api}{url}", json=body, timeout=5).status_code == 401, path
        if body is not None:
            _validator(spec, op["requestBody"]["content"]["application/json"]["schema"]).validate(body)
        elif method == "post":
            assert "requestBody" in op, path  # every write declares its body (here: an empty object)
        resp = requests.request(method, f"{api}{url}", json=body, headers=AUTH, timeout=5)
        expected = 404 if url.endswith("/99/deny") else int(next(c for c in op["responses"] if c.startswith("2")))
        assert resp.status_code == expected, (path, resp.text)
        schema = op["responses"][str(resp.status_code)]["content"]
        media = resp.headers["Content-Type"].split(";")[0]
        assert media in schema, (path, media)
        _validator(spec, schema[media]["schema"]).validate(resp.json())


def test_openapi_body_schemas_refuse_what_the_server_refuses(api: str) -> None:
    spec = requests.get(f"{api}/api/v1/openapi.json", timeout=5).json()
    op = spec["paths"]["/api/v1/incidents/{id}/silence"]["post"]
    validator = _validator(spec, op["requestBody"]["content"]["application/json"]["schema"])
    for body in ({}, {"duration": "1h", "colour": "red"}, {"duration": "1h", "comment": "x" * 2001}):
        assert list(validator.iter_errors(body)), body
        resp = requests.post(f"{api}/api/v1/incidents/1/silence", json=body, headers=AUTH, timeout=5)
        assert resp.status_code == 400 and resp.headers["Content-Type"] == "application/problem+json", resp.text


# -- hostile input -------------------------------------------------------------------------------------------

DEEP = b'{"points": ' + b"[" * 5000 + b"]" * 5000 + b"}"
HUGE_INT = b'{"points": [{"name": "x", "value": 1' + b"0" * 5000 + b"}]}"
HOSTILE: list[tuple[str, bytes, str | None, str]] = [
    ("/api/v1/ingest", HUGE_INT, "points.0.value", "integer too large"),
    ("/api/v1/ingest", DEEP, None, "nested deeper"),
    ("/api/v1/ingest", b'{"points": [{"name": "a\\u0000b", "value": 1}]}', "points.0.name", "NUL"),
    ("/api/v1/ingest", b'{"points": [{"name": "x", "value": 1, "labels": {"job": "\\u0000"}}]}',
     "points.0.labels.job", "NUL"),
    ("/api/v1/ingest", b'{"points": [{"name": "x", "value": NaN}]}', "points.0.value", "not a JSON number"),
    ("/api/v1/ingest", b'{"points": [{"name": "x", "value": 1e999}]}', "points.0.value", "out of range"),
    ("/api/v1/ingest", b'{"points": [{"name": "' + b"x" * 201 + b'", "value": 1}]}', "points.0.name", "200"),
    ("/api/v1/ingest", b'{"points": [{"name": "x", "value": 1}], "stream": "a b"}', "stream", "match pattern"),
    ("/api/v1/ingest", b'{"events": [{"type": "x", "data": {"k": "\\ud800"}}]}', "events.0.data.k", "surrogate"),
    ("/api/v1/ingest", b'{"points": "\xff"}', None, "not UTF-8"),
    ("/api/v1/alertmanager", b'{"version": "4", "alerts": [{"status": "firing", "startsAt": "2024-01-01T00:00:00Z",'
     b' "labels": {"alertname": "x", "job": "\\ud800"}}]}', "alerts.0.labels.job", "surrogate"),
    ("/api/v1/alertmanager", b'{"version": "4", "alerts": [{"status": "firing", "startsAt": "2024-01-01T00:00:00Z",'
     b' "labels": {"alertname": "' + b"A" * 201 + b'"}}]}', "alerts.0.labels", "longer than 200"),
    ("/api/v1/alertmanager", b'{"version": "4", "alerts": [{"status": "firing", "startsAt": "tomorrow",'
     b' "labels": {}}]}', "alerts.0", "ISO 8601"),
    ("/api/v1/incidents/1/ack", b'{"comment": "' + b"c" * 2001 + b'"}', "comment", "2000"),
    ("/api/v1/incidents/1/silence", b'{"duration": "99999999w"}', "duration", "at most 366 days"),
    ("/api/v1/pause", b'{"now": true}', "now", "Extra inputs"),
]


@pytest.mark.parametrize(("path", "body", "field", "needle"), HOSTILE)
def test_hostile_bodies_are_400_problems_naming_the_field(
    api: str, backend: PushBackend, path: str, body: bytes, field: str | None, needle: str
) -> None:
    resp = requests.post(f"{api}{path}", data=body, headers={**AUTH, "Content-Type": "application/json"}, timeout=5)
    assert resp.status_code == 400, resp.text
    assert resp.headers["Content-Type"] == "application/problem+json"
    problem = resp.json()
    assert problem["status"] == 400 and problem["title"] == "Bad Request" and needle in problem["detail"], problem
    assert problem.get("field") == field
    assert backend.pushed == [] and not [c for c in backend.calls if c[0] not in ("list_incidents",)]


def test_bad_query_parameters_and_raw_requests_are_4xx(api: str) -> None:
    assert requests.get(f"{api}/api/v1/incidents", params={"state": "fir\x00ing"}, timeout=5).status_code == 400
    assert requests.get(f"{api}/api/v1/actions", params={"state": "x" * 600}, timeout=5).status_code == 400
    assert requests.get(f"{api}/api/v1/incidents", params={"limit": "\u0661\u0660"}, timeout=5).status_code == 400
    assert requests.get(f"{api}/api/v1/incidents/{'9' * 19}", timeout=5).status_code == 404
    host, port = api.removeprefix("http://").split(":")
    for raw in (
        b"GET /metrics?name[]=\xff HTTP/1.1\r\nHost: x\r\n\r\n",  # not UTF-8: prometheus-client would raise
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: \xff\xfe\r\n\r\n",
        b"POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
        b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    ):
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(raw)
            status_line = sock.recv(65536).split(b"\r\n", 1)[0]
        assert status_line.startswith(b"HTTP/1.1 4"), (raw, status_line)


def test_chunked_body_over_the_limit_is_413_and_closes(api: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"points": ['
        for _ in range(2000):
            yield b'{"name": "x", "value": 1},' * 40
        yield b"]}"

    resp = requests.post(f"{api}/api/v1/ingest", data=chunks(), headers=AUTH, timeout=10)
    assert resp.status_code == 413 and resp.headers["Connection"] == "close"
    assert resp.json()["status"] == 413


def test_signed_links_with_malformed_signatures_are_403(backend: PushBackend) -> None:
    for url in _serve(backend):
        good = signed_path(TOKEN, 10, "approve")
        base, sig = good.rsplit("sig=", 1)
        for bad in (base + "sig=" + "é" * 64, base + "sig=%FF%FE", base + "sig=" + sig.upper(),
                    good.replace("expires=", "expires=1" + "0" * 500), good.replace("decision=approve", "decision=")):
            assert requests.post(f"{url}{bad}", timeout=5).status_code == 403, bad
            assert requests.get(f"{url}{bad}", timeout=5).status_code == 403, bad
        nul = base + "sig=" + sig + "%00"  # a NUL in any query parameter is refused before anything else
        assert requests.post(f"{url}{nul}", timeout=5).status_code == 400
        assert not [c for c in backend.calls if c[0] == "approve"]


# -- nothing leaks -------------------------------------------------------------------------------------------


def test_store_errors_and_crashes_leak_no_sql_path_or_traceback(api: str, backend: PushBackend) -> None:
    sql = "store sqlite:////var/lib/aiops/aiops.db: IntegrityError: (sqlite3.IntegrityError) [SQL: INSERT INTO x]"
    with structlog.testing.capture_logs() as logs:
        backend.raise_next = StoreError(sql)
        resp = requests.post(f"{api}/api/v1/incidents/1/ack", json={}, headers=AUTH, timeout=5)
        assert resp.status_code == 503
        backend.raise_next = AiopsError(f"cannot do it: {sql}", reason="conflict")
        hidden = requests.post(f"{api}/api/v1/incidents/1/ack", json={}, headers=AUTH, timeout=5)
        assert hidden.status_code == 409
        backend.raise_next = AiopsError("lock held in /var/lib/aiops/state/lock", reason="conflict")
        path = requests.post(f"{api}/api/v1/incidents/1/ack", json={}, headers=AUTH, timeout=5)
        backend.raise_next = RuntimeError(f'File "/usr/lib/python3/x.py", line 3 {TOKEN}')
        crash = requests.post(f"{api}/api/v1/incidents/1/ack", json={}, headers=AUTH, timeout=5)
        assert crash.status_code == 500
    for r in (resp, hidden, path, crash):
        assert r.headers["Content-Type"] == "application/problem+json"
        for leak in ("SQL", "INSERT", "sqlite3", "/var/lib", "/usr/lib", "Traceback", TOKEN):
            assert leak not in r.text, (leak, r.text)
    assert path.json()["detail"] == "lock held in lock"
    error_id = crash.json()["error_id"]
    assert any(e.get("error_id") == error_id and e["event"] == "http.handler_failed" for e in logs)


def _postgres_store(base: str) -> Store:
    """A store in a database of its own on the session's PostgreSQL cluster."""
    name = "t_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return Store(base.rsplit("/", 1)[0] + "/" + name)


STORE_SENSITIVE = [
    ("/api/v1/ingest", {"points": [{"name": "cpu\u0000", "value": 1}]}),
    ("/api/v1/ingest", {"points": [{"name": "cpu", "value": 1, "labels": {"host": "a\u0000b"}}]}),
    ("/api/v1/ingest", {"events": [{"type": "x", "data": {"n": 2**70}}]}),
    ("/api/v1/alertmanager", {"version": "4", "alerts": [
        {"status": "firing", "labels": {"alertname": "A" * 201}, "startsAt": "2024-01-01T00:00:00Z"}]}),
    ("/api/v1/alertmanager", {"version": "4", "alerts": [
        {"status": "firing", "labels": {"alertname": "A" * 200}, "startsAt": "2024-01-01T00:00:00Z"}]}),
]


@pytest.mark.postgres
def test_the_same_input_gets_the_same_answer_on_every_store(tmp_path: Path, postgres_url: str) -> None:
    """NUL bytes, 64-bit overflows and over-long alert names are refused before any store sees them."""
    answers: dict[str, list[tuple[int, Any]]] = {}
    stores = (("sqlite", Store(f"sqlite:///{tmp_path}/store.db")), ("postgres", _postgres_store(postgres_url)))
    for kind, store in stores:
        store.migrate()
        answers[kind] = []
        for url in _serve(PushBackend(store)):
            for path, body in STORE_SENSITIVE:
                resp = requests.post(f"{url}{path}", data=json.dumps(body), headers=AUTH, timeout=5)
                answers[kind].append((resp.status_code, resp.json()))
        store.close()
    assert [status for status, _ in answers["sqlite"]] == [400, 400, 400, 400, 202], answers["sqlite"]
    assert answers["sqlite"] == answers["postgres"]
    assert not any("SQL" in json.dumps(body) for _, body in answers["postgres"])
