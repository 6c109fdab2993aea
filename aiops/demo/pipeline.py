"""The demo's feature pipeline: draws batches of production rows, scores them through the model service
and appends them to the prediction log (a SQLite table); the ground truth arrives later.

Run as its own process (``python -m aiops.demo.pipeline --dir D --service URL``), so that killing it is a
real outage that aiops must notice (no fresh rows) and repair (the ``restart`` remediation starts it again
and waits for its readiness file). Labels are written ``--label-delay`` seconds after the prediction, as
when the truth comes from a later business event; a killed pipeline loses the labels it still held.
"""

from __future__ import annotations

import argparse
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import requests

from aiops.demo.common import DRIFT_COLUMNS, FEATURES, TABLE, Layout, load_pool, read_control

SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, "
    + ", ".join(f"{f} REAL" for f in FEATURES)
    + ", prediction INTEGER, score REAL, model_version TEXT, label INTEGER)"
)


def connect(path: Path) -> sqlite3.Connection:
    """The prediction log, in WAL mode so that aiops reads while the pipeline writes."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(SCHEMA)
    conn.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_ts ON {TABLE} (ts)")
    return conn


def _score(session: requests.Session, url: str, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """One request; an error answer is retried (up to 3 times), as a real client with retries would."""
    for _ in range(4):
        try:
            resp = session.post(f"{url}/predict", json={"rows": rows}, timeout=10)
        except requests.RequestException:
            time.sleep(0.05)
            continue
        if resp.status_code == 200:
            answer: dict[str, Any] = resp.json()
            return answer
    return None


def run(layout: Layout, service: str, interval: float, batch: int, requests_per_batch: int, delay: float) -> None:
    import numpy as np

    stop: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    pool = load_pool()
    rng = np.random.default_rng(int(time.time() * 1000) % (2**32))
    conn = connect(layout.db)
    session = requests.Session()
    pending: list[tuple[float, int, int]] = []  # (due, row id, label): the ground truth not yet arrived
    chunk = max(1, batch // requests_per_batch)
    while not stop:
        started = time.time()
        factor = float(read_control(layout).get("drift", 1.0))
        sample = pool.iloc[rng.integers(0, len(pool), batch)].reset_index(drop=True)
        if factor != 1.0:
            sample.loc[:, DRIFT_COLUMNS] = sample[DRIFT_COLUMNS] * factor
        records = sample[FEATURES].round(6).to_dict("records")
        out: list[tuple[Any, ...]] = []
        for i in range(0, len(records), chunk):
            rows = records[i : i + chunk]
            answer = _score(session, service, rows)
            if answer is None:
                continue  # the rows of a request that kept failing are dropped (and counted by the service)
            now = time.time()
            for j, row in enumerate(rows):
                out.append(
                    (
                        now,
                        *(row[f] for f in FEATURES),
                        int(answer["predictions"][j]),
                        float(answer["scores"][j]),
                        str(answer["version"]),
                        int(sample["label"].iloc[i + j]),
                    )
                )
        if out:
            columns = ", ".join(["ts", *FEATURES, "prediction", "score", "model_version"])
            marks = ", ".join("?" * (len(FEATURES) + 4))
            conn.execute("BEGIN")
            for row in out:
                cur = conn.execute(f"INSERT INTO {TABLE} ({columns}) VALUES ({marks})", row[:-1])
                pending.append((row[0] + delay, int(cur.lastrowid or 0), int(row[-1])))
            conn.execute("COMMIT")
        now = time.time()
        due = [p for p in pending if p[0] <= now]
        if due:
            pending = [p for p in pending if p[0] > now]
            conn.executemany(f"UPDATE {TABLE} SET label = ? WHERE id = ?", [(label, rid) for _, rid, label in due])
        layout.pipeline_ready.touch()
        time.sleep(max(0.0, interval - (time.time() - started)))
    conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aiops.demo.pipeline", description="the demo's feature pipeline")
    parser.add_argument("--dir", required=True)
    parser.add_argument("--service", required=True, help="base URL of the model service")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between batches")
    parser.add_argument("--batch", type=int, default=20, help="rows per batch")
    parser.add_argument("--requests", type=int, default=4, help="prediction requests per batch")
    parser.add_argument("--label-delay", type=float, default=5.0, help="seconds until a row's label arrives")
    ns = parser.parse_args(argv)
    run(Layout(Path(ns.dir)), ns.service, ns.interval, ns.batch, ns.requests, ns.label_delay)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
