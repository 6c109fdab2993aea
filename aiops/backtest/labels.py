"""Labels for scoring a backtest and tuning a check: which stretches of time deserved an incident.

One record shape whatever the origin — a check, a time range, and a verdict: ``useful`` (an incident there
was right), ``noise`` (an incident there should not have paged) or ``missed`` (an incident should have been
opened there). :class:`LabelSource` is the one interface the backtest and ``aiops tune`` read through;
:class:`FileLabels` reads a CSV or JSON file, and operators' verdicts stored by the daemon plug in as another
implementation of the same interface.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aiops.backtest.records import Score, WouldBeIncident
from aiops.errors import AiopsError
from aiops.sources.file import parse_timestamp
from aiops.store.verdicts import VerdictKind, verdicts_for_check


@dataclass(frozen=True)
class Label:
    check: str
    start: float
    end: float
    verdict: VerdictKind


class LabelSource(Protocol):
    def labels(self, check: str | None, since: float, until: float) -> list[Label]: ...


class FileLabels:
    """Labels from a CSV (header ``check,start,end[,verdict]``) or a JSON list of objects with those keys.
    Times are epoch seconds or ISO 8601; a missing verdict means ``useful`` (a labelled anomaly window)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._labels = _read(self.path)

    def labels(self, check: str | None, since: float, until: float) -> list[Label]:
        return [
            lab
            for lab in self._labels
            if (check is None or lab.check == check) and lab.end >= since and lab.start <= until
        ]


class StoreVerdicts:
    """Operators' verdicts kept by the daemon (``aiops verdict``, the API, the signed links), as labels: each
    verdict's window is its incident's (opened to resolved), a ``missed`` verdict's the window it names."""

    def __init__(self, store_url: str) -> None:
        self.store_url = store_url

    def labels(self, check: str | None, since: float, until: float) -> list[Label]:
        from aiops.store.store import Store

        if check is None:
            raise AiopsError("operators' verdicts are read per check: name the check (--check)")
        store = Store(self.store_url)
        try:
            records = verdicts_for_check(store, check, since, until)
        finally:
            store.close()
        return [
            Label(check=r.check, start=float(r.starts_at), end=float(r.ends_at), verdict=r.verdict) for r in records
        ]


def _read(path: Path) -> list[Label]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AiopsError(f"{path}: cannot read labels: {exc}") from None
    records: list[Any]
    if path.suffix.lower() == ".json":
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AiopsError(f"{path}: not JSON: {exc}") from None
        if not isinstance(records, list):
            raise AiopsError(f"{path}: expected a JSON list of {{check, start, end, verdict}} objects")
    else:
        records = list(csv.DictReader(text.splitlines()))
    return [_label(path, i + 1, r) for i, r in enumerate(records)]


def _label(path: Path, n: int, record: Any) -> Label:
    where = f"{path}: record {n}"
    if not isinstance(record, dict):
        raise AiopsError(f"{where}: expected an object with check, start, end, verdict")
    check = record.get("check")
    if not check:
        raise AiopsError(f"{where}: no check")
    start, end = parse_timestamp(record.get("start")), parse_timestamp(record.get("end"))
    if start is None or end is None or not (math.isfinite(start) and math.isfinite(end)):
        raise AiopsError(f"{where}: start and end must be epoch seconds or ISO 8601 times")
    if end < start:
        raise AiopsError(f"{where}: end is before start")
    raw = str(record.get("verdict") or "useful").strip().lower()
    try:
        verdict = VerdictKind.parse(raw)
    except AiopsError as exc:
        raise AiopsError(f"{where}: {exc}") from None
    return Label(check=str(check), start=float(start), end=float(end), verdict=verdict)


def score(incidents: Sequence[WouldBeIncident], labels: Sequence[Label], until: float) -> Score:
    """Precision over incidents (an incident overlapping a useful/missed window of its check is right),
    recall over useful/missed windows, time to detect from a window's start to the first firing in it."""
    positives = [lab for lab in labels if lab.verdict.positive]
    noise = [lab for lab in labels if not lab.verdict.positive]
    checks = {lab.check for lab in labels}
    judged = [i for i in incidents if i.check in checks]
    right = [i for i in judged if any(_hit(i, lab, until) for lab in positives)]
    delays = []
    detected = 0
    for lab in positives:
        firings = [i.firing_at for i in judged if _hit(i, lab, until)]
        if firings:
            detected += 1
            delays.append(max(0.0, min(firings) - lab.start))
    return Score(
        positives=len(positives),
        detected=detected,
        noise_windows=len(noise),
        noise_paged=sum(1 for lab in noise if any(_hit(i, lab, until) for i in judged)),
        true_positives=len(right),
        false_positives=len(judged) - len(right),
        precision=len(right) / len(judged) if judged else None,
        recall=detected / len(positives) if positives else None,
        mean_time_to_detect=sum(delays) / len(delays) if delays else None,
    )


def _hit(incident: WouldBeIncident, label: Label, until: float) -> bool:
    return incident.check == label.check and incident.overlaps(label.start, label.end, until)
