"""Backtest results kept for the console: ``aiops backtest --save`` writes them under the config's
``state_dir/backtests/``, and the daemon lists and reads them from there.

Files, not a table: a backtest runs outside the daemon (often on a laptop or a compute cluster) and its
result is a document to look at, not state the engine decides on. Names are checked against a strict
pattern before any path is built, so a request can never read outside that folder.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiops.backtest.records import BacktestResult, result_from_dict
from aiops.errors import AiopsError

FOLDER = "backtests"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,150}\.json$")


@dataclass(frozen=True)
class SavedBacktest:
    """One saved run: its file name and what a list shows of it."""

    name: str
    saved_at: float
    checks: tuple[str, ...]
    since: float
    until: float
    incidents: int
    pages_per_week: float
    configs: tuple[str, ...]  # "config", and "against" when a second config was compared


def folder(state_dir: str | Path) -> Path:
    return Path(state_dir) / FOLDER


def save(state_dir: str | Path, results: dict[str, BacktestResult], now: float | None = None) -> Path:
    """Write the results (the same JSON as ``--json``) under a new, time-ordered name; returns the path."""
    first = next(iter(results.values()))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    label = re.sub(r"[^A-Za-z0-9_-]+", "-", "+".join(first.checks) or "all")[:60].strip("-") or "all"
    target = folder(state_dir)
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"{stamp}-{label}.json"
    n = 1
    while path.exists():
        n += 1
        path = target / f"{stamp}-{label}-{n}.json"
    path.write_text(json.dumps({k: r.to_dict() for k, r in results.items()}, indent=1), encoding="utf-8")
    return path


def load(state_dir: str | Path, name: str) -> dict[str, BacktestResult]:
    """The results saved under ``name``; an :class:`AiopsError` for a bad or unknown name."""
    if not _NAME.match(name):
        raise AiopsError(f"no saved backtest {name[:60]!r}")
    path = folder(state_dir) / name
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return {key: result_from_dict(value) for key, value in data.items()}
    except FileNotFoundError:
        raise AiopsError(f"no saved backtest {name!r}") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AiopsError(f"saved backtest {name!r} cannot be read: {exc.__class__.__name__}") from None


def listing(state_dir: str | Path, limit: int = 100) -> list[SavedBacktest]:
    """Saved runs, newest first; files that do not parse are skipped (a half-written save, a stray file)."""
    out: list[SavedBacktest] = []
    base = folder(state_dir)
    if not base.is_dir():
        return out
    for path in sorted(base.glob("*.json"), reverse=True)[:limit]:
        try:
            results = load(state_dir, path.name)
        except AiopsError:
            continue
        first = next(iter(results.values()), None)
        if first is None:
            continue
        out.append(
            SavedBacktest(
                name=path.name,
                saved_at=path.stat().st_mtime,
                checks=first.checks,
                since=first.since,
                until=first.until,
                incidents=len(first.incidents),
                pages_per_week=round(first.pages_per_week, 2),
                configs=tuple(results),
            )
        )
    return out
