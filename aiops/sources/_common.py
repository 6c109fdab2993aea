"""Helpers every source shares: data-problem bookkeeping, and secrets read from files or env, not config text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aiops.config import environment
from aiops.errors import SourceError
from aiops.redact import redact
from aiops.types import Finding, Frame, Series

EXAMPLE_CHARS = 200


class Problems:
    """Data-quality problems seen in one collection: a count and the first three examples per kind.

    Why one finding per kind (labels ``source``, ``problem``): each kind becomes its own incident, so "NaN
    values" and "rows out of order" are muted, acknowledged and resolved independently.
    """

    def __init__(self, source: str, at: float) -> None:
        self.source, self.at = source, at
        self.seen: dict[str, tuple[int, list[str]]] = {}

    def add(self, name: str, example: str, count: int = 1) -> None:
        total, examples = self.seen.get(name, (0, []))
        if len(examples) < 3:
            short = example if len(example) <= EXAMPLE_CHARS else example[:EXAMPLE_CHARS] + "..."
            examples.append(redact(short))
        self.seen[name] = (total + count, examples)

    def findings(self) -> tuple[Finding, ...]:
        return tuple(
            Finding(
                kind="data_quality",
                detector=self.source,
                summary=f"{self.source} source: {count} x {name.replace('_', ' ')}",
                labels={"source": self.source, "problem": name},
                evidence={"count": count, "examples": examples},
                observed_at=self.at,
            )
            for name, (count, examples) in self.seen.items()
        )


def read_secret(value: str | None, file: str | None, env: str | None, what: str) -> str | None:
    """A credential given inline, in a file (``*_file``, re-read every call so rotation works) or an env var."""
    if file:
        try:
            return Path(file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SourceError(f"{what}: cannot read {file}: {exc.strerror or exc}", recoverable=False) from None
    if env:
        got = environment.variable(env)
        if got is None:
            raise SourceError(f"{what}: environment variable {env} is not set", recoverable=False)
        return got
    return value


def rows_frame(
    source: str,
    until: float,
    series: Sequence[Series],
    rows: Sequence[Mapping[str, Any]],
    problems: Problems,
    *,
    scan: int | None = None,
    has_new_data: bool | None = None,
) -> Frame:
    """A Frame of rows whose ``columns`` are the keys the rows have, in first-seen order: what the data has,
    not what a schema declares (the schema detector compares the two). ``scan`` bounds the rows looked at."""
    columns: dict[str, None] = {}
    for row in rows[:scan]:
        columns.update(dict.fromkeys(row))
    return Frame(
        source=source,
        collected_at=until,
        series=tuple(series),
        rows=tuple(rows),
        columns=tuple(columns),
        problems=problems.findings(),
        has_new_data=has_new_data,
    )
