"""Property-based fuzzing of every write endpoint in one process: whatever JSON (or bytes) arrives, the answer
is below 500, and a refusal is an RFC 9457 problem; the push endpoints run over SQLite and PostgreSQL, so
whatever the schema lets through must be stored by both. The bulk run against the real daemon on both stores is
``tests/e2e/test_http_fuzz.py``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiops.store.store import Store
from tests.unit.test_http_contract import AUTH, VALID_REQUESTS, PushBackend, _postgres_store, _serve

WRITES = sorted((path, url, body or {}) for (method, path), (url, body) in VALID_REQUESTS.items() if method == "post")

_hostile_text = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["\ud800", "a\x00b", "\udfff\ud800", "x" * 300, "-rf", "%s%n", "../../etc/passwd"]),
)
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    _hostile_text,
)
_json = st.recursive(
    _leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_hostile_text, inner, max_size=4),
    max_leaves=12,
)


def _bodies(example: dict[str, Any]) -> st.SearchStrategy[bytes]:
    """Bodies near the valid example (one field replaced or added, lists of items mutated) and far from it."""
    keys = st.sampled_from(sorted(example) or ["x"]) | _hostile_text
    near = st.builds(lambda key, value: {**example, key: value}, keys, _json)
    items = st.builds(
        lambda key, value: {**example, key: [value]}, st.sampled_from(["points", "events", "alerts"]), _json
    )
    as_json = st.one_of(near, items, _json).map(lambda v: json.dumps(v, allow_nan=True).encode())
    return st.one_of(as_json, st.binary(max_size=64))


@pytest.fixture(scope="module")
def fuzz_api() -> Iterator[str]:
    yield from _serve(PushBackend())


PUSH = [w for w in WRITES if w[0] in ("/api/v1/ingest", "/api/v1/alertmanager")]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def store_api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The push endpoints over a real store: whatever the schema lets through, both stores must take."""
    if request.param == "sqlite":
        store = Store(f"sqlite:///{tmp_path_factory.mktemp('fuzz')}/store.db")
    else:
        store = _postgres_store(request.getfixturevalue("postgres_url"))
    store.migrate()
    yield from _serve(PushBackend(store))
    store.close()


def _check_bodies(api: str, url: str, example: dict[str, Any]) -> None:
    session = requests.Session()

    @settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(body=_bodies(example))
    def check(body: bytes) -> None:
        resp = session.post(f"{api}{url}", data=body, headers={**AUTH, "Content-Type": "application/json"}, timeout=10)
        assert resp.status_code < 500, (body[:200], resp.text[:300])
        if resp.status_code >= 400:
            assert resp.headers["Content-Type"] == "application/problem+json"

    with session:
        check()


@pytest.mark.parametrize(("path", "url", "example"), WRITES, ids=[w[0] for w in WRITES])
def test_fuzzed_bodies_never_get_a_5xx(fuzz_api: str, path: str, url: str, example: dict[str, Any]) -> None:
    _check_bodies(fuzz_api, url, example)


@pytest.mark.postgres
@pytest.mark.parametrize(("path", "url", "example"), PUSH, ids=[w[0] for w in PUSH])
def test_fuzzed_pushes_are_stored_or_refused_alike_on_every_store(
    store_api: str, path: str, url: str, example: dict[str, Any]
) -> None:
    _check_bodies(store_api, url, example)
