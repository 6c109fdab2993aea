"""2 000 malformed requests per endpoint against the real daemon, on SQLite and on PostgreSQL: no answer is a
5xx, and the daemon's memory comes back to within 20 MB of where it started.

The bodies come from a seeded mutator (fast and reproducible: the failing body is printed with its seed)
working on the valid example of each endpoint: a value replaced by a hostile literal (a 5 000-digit integer,
a lone surrogate, a NUL, NaN, deep nesting), a key added, bytes flipped, cut or inserted. They go over four
kept-alive connections, so the run measures the server, not TCP set-up.
"""

from __future__ import annotations

import http.client
import json
import random
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import pytest
import requests
import sqlalchemy as sa

from aiops.approval_links import signed_path
from tests.e2e.daemon import DaemonProcess
from tests.unit.test_http_contract import VALID_REQUESTS

PER_ENDPOINT = 2000
CONNECTIONS = 4
TOKEN = "fuzz-t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

CONFIG = """
store: {{url: "{store}"}}
state_dir: {work}/state
server: {{token: "{token}"}}
checks:
  - name: pushed
    every: 1s
    source: {{type: push, stream: jobs}}
    detectors: [{{type: threshold, above: 1000000}}]
"""

# Literals JSON encoders will not produce, written into the body as raw text.
HOSTILE = [
    "1" + "0" * 5000, "-" + "9" * 40, "9223372036854775808", "1e999", "NaN", "-Infinity", '"\\ud800"',
    '"a\\u0000b"', '"\\udfff\\ud83d"', '"' + "A" * 70000 + '"', "[" * 3000 + "]" * 3000, '{"a":' * 40 + "1" + "}" * 40,
    "[" + "0," * 12000 + "0]", '"--all-namespaces"', "null", "true", "[]", "{}", '"' + "é" * 300 + '"', "-0.0e-99999",
]


def _dump(value: Any) -> str:
    """JSON text that keeps :class:`_Raw` literals as they are."""
    if isinstance(value, _Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_dump(v) for v in value) + "]"
    return json.dumps(value)


class _Raw:
    def __init__(self, text: str) -> None:
        self.text = text


def _containers(value: Any, out: list[Any]) -> list[Any]:
    if isinstance(value, dict | list):
        out.append(value)
        for item in value.values() if isinstance(value, dict) else value:
            _containers(item, out)
    return out


def mutate(rng: random.Random, example: dict[str, Any]) -> bytes:
    """One malformed body derived from ``example``."""
    body = json.loads(json.dumps(example))
    op = rng.randrange(6)
    if op <= 2:  # replace or add a value somewhere in the tree
        target = rng.choice(_containers(body, []))
        literal = _Raw(rng.choice(HOSTILE))
        if isinstance(target, dict):
            key = rng.choice([*target, rng.choice(["\u0000", "x" * 300, "\ud800", "colour", ""])])
            target[key] = literal
        elif target:
            target[rng.randrange(len(target))] = literal
        else:
            target.append(literal)
    text = _dump(body).encode("utf-8", "surrogatepass")
    if op >= 3:  # byte-level damage
        pos = rng.randrange(len(text) + 1)
        damage = rng.choice([b"", b"\xff", b"\x00", b"\xed\xa0\x80", b"{", b"]", b'"', b"\\u", rng.randbytes(8)])
        cut = rng.randrange(4)
        text = text[:pos] + damage + text[pos + cut :] if op < 5 else text[:pos]
    return text


def _targets(daemon_url: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for (method, _path), (url, body) in sorted(VALID_REQUESTS.items()):
        if method == "post":
            yield "POST", f"{daemon_url}{url}", body or {}
    yield "POST", f"{daemon_url}/-/reload", {}
    yield "POST", f"{daemon_url}{signed_path(TOKEN, 1, 'approve')}", {}


def _send_all(url: str, method: str, bodies: list[bytes]) -> list[tuple[int, bytes, str]]:
    """Send ``bodies`` over one kept-alive connection; return the 5xx answers (status, body, text).

    Plain ``http.client``, not requests: these tens of thousands of requests are the test, and requests'
    own work per call was as much CPU as the daemon's answer, on the same cores. A connection the server
    drops without an answer raises, as it would with requests (no retry); one it closes after an answer is
    opened again."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    failures = []
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        for body in bodies:
            conn.request(method, path, body=body, headers=AUTH)
            resp = conn.getresponse()
            text = resp.read()
            if resp.status >= 500:
                failures.append((resp.status, body[:300], text[:500].decode("utf-8", "replace")))
    finally:
        conn.close()
    return failures


def _fuzz(daemon: DaemonProcess) -> None:
    assert daemon.proc is not None
    process = psutil.Process(daemon.proc.pid)
    rng = random.Random(20261205)
    with requests.Session() as session:
        for method, url, example in _targets(daemon.url):  # warm up: every code path once
            session.request(method, url, data=json.dumps(example), headers=AUTH, timeout=30)
    started_rss = process.memory_info().rss
    # CONNECTIONS kept-alive connections at once: the machine's latency, not the server, bounds one connection.
    with ThreadPoolExecutor(CONNECTIONS) as pool:
        for method, url, example in _targets(daemon.url):
            bodies = [mutate(rng, example) for _ in range(PER_ENDPOINT)]
            shares = [bodies[i::CONNECTIONS] for i in range(CONNECTIONS)]
            failures = [f for part in pool.map(_send_all, [url] * CONNECTIONS, [method] * CONNECTIONS, shares)
                        for f in part]
            assert not failures, (url, failures[:3], daemon.logs()[-2000:])
            query = f"?state={mutate(rng, {}).decode('latin-1')[:50]}&limit={rng.choice(['0', '-1', '9' * 30, ''])}"
            assert requests.get(f"{daemon.url}/api/v1/incidents{query}", timeout=30).status_code < 500
    ended_rss = process.memory_info().rss
    assert ended_rss - started_rss < 20 * 1024 * 1024, (started_rss, ended_rss)
    assert requests.get(f"{daemon.url}/readyz", timeout=5).status_code == 200


@pytest.mark.slow
def test_fuzzed_requests_on_sqlite(tmp_path: Path) -> None:
    _run(tmp_path, f"sqlite:///{tmp_path}/aiops.db")


@pytest.mark.slow
@pytest.mark.postgres
def test_fuzzed_requests_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    name = "fuzz_" + uuid.uuid4().hex[:10]
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    _run(tmp_path, postgres_url.rsplit("/", 1)[0] + "/" + name)


def _run(tmp_path: Path, store_url: str) -> None:
    config = tmp_path / "aiops.yaml"
    config.write_text(CONFIG.format(store=store_url, work=tmp_path, token=TOKEN))
    daemon = DaemonProcess(config, tmp_path).start()
    try:
        _fuzz(daemon)
        assert daemon.terminate(timeout=10) == 0
    finally:
        if daemon.proc and daemon.proc.poll() is None:
            daemon.kill()
