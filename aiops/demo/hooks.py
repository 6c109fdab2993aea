"""Small commands the demo's remediations run, each a real process started by the action ledger.

- ``promoted``: the reload hook of ``retrain``. A promoted challenger was trained on the recent window, so
  the drift check's reference becomes that window (the champion's training data), and the daemon reloads
  its config so the drift detector refits on it. Without this, a check that compares production with the
  *old* training data would call the healed system drifted for ever.
- ``recycle``: "recycle the model server's workers", the flapping scenario's first rung. It runs, and it
  does not help, because the cause is upstream: exactly what verification is there to notice.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from pathlib import Path

import requests

from aiops.demo.common import FEATURES, MODEL, TABLE, Layout


def promoted(layout: Layout, version: str, daemon: str) -> int:
    import pandas as pd

    from aiops.registry import FilesystemRegistry

    meta = FilesystemRegistry(layout.registry).metadata(MODEL, version)
    window = meta.get("training_window") or {}
    try:
        start, end = float(window["from"]), float(window["to"])
    except (KeyError, TypeError, ValueError):
        print(f"version {version} has no training window; reference unchanged", file=sys.stderr)
        return 0
    conn = sqlite3.connect(layout.db, timeout=30)
    try:
        frame = pd.read_sql_query(
            f"SELECT {', '.join(FEATURES)} FROM {TABLE} WHERE ts >= ? AND ts <= ? AND label IS NOT NULL",
            conn,
            params=(start, end),
        )
    finally:
        conn.close()
    if len(frame) < 30:
        print(f"only {len(frame)} rows in the training window; reference unchanged", file=sys.stderr)
        return 0
    tmp = layout.reference.with_suffix(".tmp")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, layout.reference)
    resp = requests.post(f"{daemon}/-/reload", timeout=30)
    if resp.status_code != 200:
        print(f"daemon reload answered {resp.status_code}: {resp.text[:200]}", file=sys.stderr)
        return 1
    print(f"drift reference := training window of version {version} ({len(frame)} rows); daemon reloaded")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aiops.demo.hooks", description="the demo's remediation hooks")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("promoted")
    p.add_argument("--dir", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--daemon", required=True, help="base URL of the daemon's HTTP listener")
    r = sub.add_parser("recycle")
    r.add_argument("--service", required=True)
    ns = parser.parse_args(argv)
    if ns.command == "promoted":
        return promoted(Layout(Path(ns.dir)), ns.version, ns.daemon)
    resp = requests.post(f"{ns.service}/-/recycle", timeout=10)
    print(f"model server workers recycled: {resp.json().get('recycled')}")
    return 0 if resp.status_code == 200 else 1


if __name__ == "__main__":
    raise SystemExit(main())
