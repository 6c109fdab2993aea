"""Push ingest end to end in one process: the real HTTP server validates and stores into a real SQLite store,
the ``push`` and ``alertmanager`` sources read the rows back incrementally."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client import CollectorRegistry

from aiops.errors import InvalidParams
from aiops.plugins import DETECTORS, SOURCES, build
from aiops.server import MAX_BODY, ApiServer
from aiops.sources.ingest import parse_alertmanager, parse_ingest
from aiops.store.records import PushedEvent
from aiops.store.store import Store

TOKEN = "ingest-t0ken-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class StoreBackend:
    """The daemon's ingest behaviour over a real store (the rest of ApiBackend is not needed here)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.now = 1000.0

    def append_events(self, rows: list[PushedEvent]) -> dict[str, Any]:
        ids = self.store.append_events(rows, self.now)
        return {"accepted": len(ids), "first_id": ids[0], "last_id": ids[-1]}

    def ready(self) -> tuple[bool, str]:
        return True, ""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path}/aiops.db")
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def api(store: Store) -> Iterator[tuple[str, StoreBackend]]:
    backend = StoreBackend(store)
    server = ApiServer(backend, CollectorRegistry(), "127.0.0.1:0", TOKEN)  # type: ignore[arg-type]
    server.start()
    try:
        yield server.url, backend
    finally:
        server.stop()


def test_ingest_validates_stores_and_push_source_reads_incrementally(
    api: tuple[str, StoreBackend], store: Store
) -> None:
    url, _ = api
    body = {
        "stream": "batch-jobs",
        "points": [
            {"name": "rows_written", "value": 120, "timestamp": 10, "labels": {"job": "etl"}},
            {"name": "rows_written", "value": 80, "timestamp": 5, "labels": {"job": "etl"}},
            {"name": "rows_written", "value": 99, "timestamp": 5, "labels": {"job": "etl"}},
            {"name": "rows_written", "value": None, "timestamp": 11, "labels": {"job": "etl"}},
            {"name": "duration_seconds", "value": 3.5, "timestamp": "1970-01-01T00:00:10Z"},
        ],
        "events": [{"type": "job_finished", "timestamp": 10, "labels": {"job": "etl"}, "data": {"status": "ok"}}],
    }
    r = requests.post(f"{url}/api/v1/ingest", json=body, headers=AUTH, timeout=5)
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 6
    source = build(SOURCES, "push", {"stream": "batch-jobs", "store_url": store.url})
    frame = source.collect(None, 2000.0)
    got = {s.key: (list(s.timestamps), list(s.values)) for s in frame.series}
    assert got == {
        'rows_written{job="etl"}': ([5.0, 10.0], [80.0, 120.0]),
        "duration_seconds": ([10.0], [3.5]),
    }
    assert frame.rows == ({"timestamp": 10.0, "type": "job_finished", "job": "etl", "status": "ok"},)
    assert {p.labels["problem"]: p.evidence["count"] for p in frame.problems} == {
        "null_value": 1,
        "duplicate_timestamp": 1,
    }
    assert source.collect(2000.0, 2001.0).empty  # nothing new
    late = {
        "stream": "batch-jobs",
        "points": [{"name": "rows_written", "value": 1, "timestamp": 7, "labels": {"job": "etl"}}],
    }
    assert requests.post(f"{url}/api/v1/ingest", json=late, headers=AUTH, timeout=5).status_code == 202
    restarted = build(SOURCES, "push", {"stream": "batch-jobs", "store_url": store.url})
    restarted.load_state_dict(json.loads(json.dumps(source.state_dict())))
    frame = restarted.collect(2001.0, 2002.0)
    assert frame.series == () and [p.labels["problem"] for p in frame.problems] == ["out_of_order"]
    other = build(SOURCES, "push", {"stream": "other", "store_url": store.url})
    assert other.collect(None, 2003.0).empty


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"points": [{"value": 1}]}, 400, "points.0.name: Field required"),
        ({"points": [{"name": "x", "value": "high"}]}, 400, "points.0.value"),
        ({"stream": "no spaces", "points": [{"name": "x", "value": 1}]}, 400, "stream:"),
        ({"stream": "alertmanager", "events": [{"type": "x"}]}, 400, "reserved"),
        ({"points": [], "events": []}, 400, "nothing to ingest"),
        ({"points": [{"name": "x", "value": 1, "timestamp": "yesterday"}]}, 400, "points.0.timestamp"),
        ({"points": [{"name": "x", "value": 1, "labels": {"a": [1]}}]}, 400, "points.0.labels"),
        ({"points": [{"name": "x", "value": 1, "colour": "red"}]}, 400, "points.0.colour: Extra inputs"),
        ({"points": [{"name": "x", "value": 1}] * 10_001}, 400, "limit 10000"),
    ],
)
def test_ingest_rejects_bad_bodies_with_a_clear_400(
    api: tuple[str, StoreBackend], store: Store, body: dict[str, Any], status: int, message: str
) -> None:
    url, _ = api
    r = requests.post(f"{url}/api/v1/ingest", json=body, headers=AUTH, timeout=5)
    assert r.status_code == status and message in r.json()["error"], r.text
    assert store.read_events("default") == []  # nothing half-stored


def test_ingest_needs_the_token_and_respects_the_size_limit(api: tuple[str, StoreBackend]) -> None:
    url, _ = api
    body = {"points": [{"name": "x", "value": 1}]}
    assert requests.post(f"{url}/api/v1/ingest", json=body, timeout=5).status_code == 401
    assert (
        requests.post(
            f"{url}/api/v1/ingest", json=body, headers={"Authorization": "Bearer nope"}, timeout=5
        ).status_code
        == 401
    )
    big = b'{"points": [' + b'{"name": "x", "value": 1},' * (MAX_BODY // 20) + b"]}"
    r = requests.post(
        f"{url}/api/v1/ingest", data=big, headers={**AUTH, "Content-Type": "application/json"}, timeout=10
    )
    assert r.status_code == 413
    r = requests.post(f"{url}/api/v1/ingest", data=b"[1, 2]", headers=AUTH, timeout=5)
    assert r.status_code == 400 and "must be an object" in r.json()["error"]
    assert requests.get(f"{url}/api/v1/ingest", timeout=5).status_code == 405


def _hook(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {"version": "4", "receiver": "aiops", "status": "firing", "groupKey": "{}", "alerts": list(alerts)}


def _alert(name: str, status: str = "firing", **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": name, **labels},
        "annotations": {"summary": f"{name} summary"},
        "startsAt": "2024-01-01T00:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2024-01-01T01:00:00Z",
        "fingerprint": f"fp-{name}-{labels.get('instance', '')}",
    }


def test_alertmanager_source_tracks_the_firing_set(store: Store) -> None:
    now = 100.0
    source = build(SOURCES, "alertmanager", {"store_url": store.url, "matchers": ['severity=~"crit.*|page"']})
    detector = build(DETECTORS, "alert", {})
    store.append_events(
        parse_alertmanager(
            _hook(_alert("Latency", severity="critical", instance="a"), _alert("Disk", severity="info")), now
        ),
        now,
    )
    frame = source.collect(None, now)
    findings = detector.evaluate(frame)
    assert [(f.labels["alertname"], f.labels["instance"], f.severity.value) for f in findings] == [
        ("Latency", "a", "critical")
    ]
    assert frame.series[0].values == (1.0,)
    # No new webhook: the alert is still firing (Alertmanager only repeats every repeat_interval).
    assert len(detector.evaluate(source.collect(now, now + 1))) == 1
    store.append_events(
        parse_alertmanager(_hook(_alert("Latency", "resolved", severity="critical", instance="a")), now), now
    )
    frame = source.collect(now + 1, now + 2)
    assert [r["status"] for r in frame.rows] == ["resolved"] and detector.evaluate(frame) == []
    assert not frame.empty  # the count series says "0 firing": a healthy evaluation
    assert source.collect(now + 2, now + 3).rows == ()


def test_alertmanager_expiry_and_state_roundtrip(store: Store) -> None:
    source = build(SOURCES, "alertmanager", {"store_url": store.url, "expire_after": 60})
    store.append_events(parse_alertmanager(_hook(_alert("Stuck")), 0.0), 0.0)
    assert len(source.collect(None, 10.0).rows) == 1
    again = build(SOURCES, "alertmanager", {"store_url": store.url, "expire_after": 60})
    again.load_state_dict(json.loads(json.dumps(source.state_dict())))
    assert [r["status"] for r in again.collect(10.0, 20.0).rows] == ["firing"]
    assert [(r["status"], r.get("expired")) for r in again.collect(20.0, 2000.0).rows] == [("resolved", True)]


def test_bad_matchers_are_config_errors() -> None:
    with pytest.raises(InvalidParams, match="matcher 'alertname': expected"):
        build(SOURCES, "alertmanager", {"matchers": ["alertname"]})
    with pytest.raises(InvalidParams, match="invalid regular expression"):
        build(SOURCES, "alertmanager", {"matchers": ['a=~"("']})


def test_parsers_reject_what_they_cannot_store() -> None:
    with pytest.raises(ValueError, match=r"alerts\.0\.startsAt"):
        parse_alertmanager({"version": "4", "alerts": [{"status": "firing", "labels": {}}]}, 0.0)
    with pytest.raises(ValueError, match=r"alerts\.0\.status"):
        parse_alertmanager({"version": "4", "alerts": [{**_alert("x"), "status": "weird"}]}, 0.0)
    rows = parse_ingest({"points": [{"name": "x", "value": float("nan")}]}, 5.0)
    assert rows[0].value is None and rows[0].ts == 5.0


def test_prune_events_keeps_recent_rows(store: Store) -> None:
    store.append_events(parse_ingest({"points": [{"name": "x", "value": 1}]}, 0.0), 100.0)
    store.append_events(parse_ingest({"points": [{"name": "x", "value": 2}]}, 0.0), 200.0)
    assert store.prune_events(150.0) == 1
    assert [r.value for r in store.read_events("default")] == [2.0]


@pytest.mark.postgres
def test_events_roundtrip_on_postgres(postgres_url: str) -> None:
    import uuid

    pg = Store(postgres_url)
    pg.migrate()
    stream = f"s{uuid.uuid4().hex[:10]}"
    rows = parse_ingest(
        {"stream": stream, "points": [{"name": "x", "value": float(i), "timestamp": i} for i in range(5)]}, 1.0
    )
    ids = pg.append_events(rows, 2.0)
    assert ids == sorted(ids) and len(ids) == 5
    source = build(SOURCES, "push", {"stream": stream, "store_url": postgres_url, "max_rows_per_tick": 3})
    assert list(source.collect(None, 3.0).series[0].values) == [0.0, 1.0, 2.0]
    assert [row.id for row in pg.read_events(stream)] == ids
    pg.close()


def test_appended_ids_are_the_stored_ids(store: Store) -> None:
    """SQLite ids come from ``last_insert_rowid()`` (one driver-level executemany per request), so they must
    be exactly the rows' ids, batch after batch and whatever the streams; JSON columns round-trip."""
    first = store.append_events(parse_ingest({"stream": "a", "points": [{"name": "x", "value": 1}] * 3}, 0.0), 1.0)
    data = {"nested": [1, 2.5, None], "text": "é"}
    second = store.append_events(
        [
            *parse_ingest({"stream": "b", "events": [{"type": "deploy", "data": data}]}, 0.0),
            *parse_ingest({"stream": "a", "events": [{"type": "x", "timestamp": 2}]}, 0.0),
        ],
        2.0,
    )
    rows = store.read_events("a") + store.read_events("b")
    assert sorted(first + second) == sorted(r.id for r in rows) and first + second == sorted(first + second)
    assert next(r for r in rows if r.stream == "b").data == data


def test_the_driver_level_read_returns_what_the_typed_columns_hold(store: Store) -> None:
    """SQLite reads pushed rows at the driver level and decodes all JSON columns in one call; it must return
    exactly what SQLAlchemy's typed columns decode, row for row (labels, event data, gaps, ``since``)."""
    import sqlalchemy as sa

    from aiops.pushed import StoredEvent
    from aiops.store import schema

    store.append_events(
        parse_ingest({"stream": "a", "points": [{"name": "x", "value": 1, "labels": {"k": 2, "j": "é"}}]}, 0.0), 1.0
    )
    store.append_events(
        [
            *parse_ingest({"stream": "a", "points": [{"name": "y", "value": None, "timestamp": 3.5}]}, 0.0),
            *parse_ingest({"stream": "a", "events": [{"type": "deploy", "data": {"v": [1, None, "\u2028"]}}]}, 0.0),
        ],
        2.0,
    )
    with store.engine.connect() as conn:
        query = sa.select(schema.events).where(schema.events.c.stream == "a").order_by(schema.events.c.id)
        typed = [StoredEvent.from_row(dict(r._mapping)) for r in conn.execute(query)]
    assert store.read_events("a") == typed and len(typed) == 3
    assert store.read_events("a", since=1.0) == typed[1:]
    assert store.read_events("a", typed[0].id, 1) == typed[1:2]
    assert store.read_events("b") == []


def test_a_large_body_is_checked_like_a_small_one() -> None:
    """Big ingest bodies take a fast walk that builds no field paths; what it refuses is then reported
    with its field, as the full walk does."""
    from aiops.errors import InvalidInput
    from aiops.http.jsonbody import parse_object

    points = [{"name": "m", "value": 1.5, "labels": {"i": str(i), "emoji": "\U0001f600"}} for i in range(2000)]
    body = json.dumps({"points": points}).encode()
    assert len(body) > 64 * 1024 and parse_object(body)["points"][1999]["labels"]["emoji"] == "\U0001f600"
    points[1500]["labels"]["job"] = "a\x00b"
    with pytest.raises(InvalidInput) as nul:
        parse_object(json.dumps({"points": points}).encode())
    assert nul.value.field == "points.1500.labels.job"
    del points[1500]["labels"]["job"]
    points[7]["name"] = "x" * (64 * 1024 + 1)
    with pytest.raises(InvalidInput) as long:
        parse_object(json.dumps({"points": points}).encode())
    assert long.value.field == "points.7.name"
