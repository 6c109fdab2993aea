"""300 checks shared by 3 real daemons on one real PostgreSQL store: every check's source (an HTTP endpoint of a
local server that records each request) is polled exactly once per tick across the cluster, only by the replica
that holds its lease, and each replica owns 100 ± 10 checks, as it says itself (``GET /api/v1/cluster`` and
``aiops_checks_owned``).

The measured window starts once the leases have settled (the replicas start one after the other, so the first
one holds more than its share until the others join: that handover is the takeover window, left out). CI
measures 60 s; ``AIOPS_SCALE_WINDOW=300`` measures the issue's five minutes.

Why per check and phase-aligned: each check ticks on its own schedule, so the count is taken over whole
intervals starting half an interval before the check's first poll in the window; a poll is then never near a
boundary, and a missed or duplicated tick shows as one poll too few or too many. A poll too many fails the
test, and so does a poll by any replica but the check's lease holder. A poll too few passes only when the
holder itself reported that tick as skipped (``aiops_check_ticks_skipped_total``: on a starved machine the
scheduler runs a tick too late to count and says so, with a ``check_overrun`` notice): no tick is lost silently.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.daemon import DaemonProcess, wait_for
from tests.e2e.lease_cluster import CheckSource, Poll, Replica
from tests.servers import create_database

REPLICAS = 3
CHECKS = 300
EVERY = 5.0  # seconds between two ticks of a check: 60 source polls a second across the cluster
WINDOW = float(os.environ.get("AIOPS_SCALE_WINDOW", "60"))  # measured seconds (a whole number of intervals)
SHARE = CHECKS / REPLICAS
SHARE_SLACK = 10  # each replica owns SHARE ± this

CONFIG = """
store: {{url: "{url}"}}
state_dir: {work}/state
checks:
{checks}"""

# Each poll says which replica made it (X-Replica), so the source server can tell who polled what.
CHECK = """  - name: {name}
    every: {every}s
    source:
      type: http
      url: "{source}/{name}"
      metrics: {{value: "$.value"}}
      headers: {{X-Replica: "{replica}"}}
    detectors: [{{type: threshold, above: 500}}]
"""


@pytest.fixture
def source() -> Iterator[CheckSource]:
    s = CheckSource()
    yield s
    s.close()


@pytest.fixture
def replicas(postgres_url: str, source: CheckSource, tmp_path: Path) -> Iterator[list[Replica]]:
    url = create_database(postgres_url)
    started = []
    for i in range(REPLICAS):
        name = f"replica-{i}"
        work = tmp_path / name
        work.mkdir()
        checks = "".join(
            CHECK.format(name=f"c{c:03d}", every=f"{EVERY:g}", source=source.url, replica=name) for c in range(CHECKS)
        )
        config = work / "aiops.yaml"
        config.write_text(CONFIG.format(url=url, work=work, checks=checks))
        started.append(Replica(name, DaemonProcess(config, work)))
    try:
        for r in started:
            r.daemon.start(wait_ready=False)
        for r in started:
            r.daemon.wait_ready(timeout=120)
        yield started
        for r in started:  # all at once: one by one, each survivor would first take over the stopped one's checks
            assert r.daemon.proc is not None
            r.daemon.proc.send_signal(signal.SIGTERM)
        for r in started:
            assert r.daemon.proc is not None
            assert r.daemon.proc.wait(timeout=60) == 0, r.daemon.logs()
    finally:
        for r in started:
            proc = r.daemon.proc
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)


def owned_metric(replica: Replica) -> float:
    text = requests.get(f"{replica.daemon.url}/metrics", timeout=10).text
    match = re.search(r"^aiops_checks_owned (\S+)$", text, re.M)
    assert match, "aiops_checks_owned is not exposed"
    return float(match.group(1))


def skipped(replica: Replica) -> dict[str, float]:
    """Scheduled runs this replica skipped, per check (the daemon's own count)."""
    text = requests.get(f"{replica.daemon.url}/metrics", timeout=10).text
    found = re.findall(r'^aiops_check_ticks_skipped_total\{check="([^"]+)"\} (\S+)$', text, re.M)
    return {check: float(value) for check, value in found}


def shares(replicas: list[Replica]) -> dict[str, list[str]]:
    """Each replica's checks, as the replica itself reports them."""
    return {r.name: r.owned() for r in replicas}


def settled(replicas: list[Replica], checks: list[str]) -> dict[str, list[str]] | None:
    """The shares once every check has exactly one owner and each replica holds its fair share."""
    owned = shares(replicas)
    every = sorted(c for share in owned.values() for c in share)
    fair = all(abs(len(share) - SHARE) <= SHARE_SLACK for share in owned.values())
    return owned if every == checks and fair else None


def polls_by_check(polls: list[Poll], start: float, end: float) -> dict[str, list[Poll]]:
    by_check: dict[str, list[Poll]] = defaultdict(list)
    for p in polls:
        if start - EVERY <= p.at <= end + EVERY:
            by_check[p.check].append(p)
    return by_check


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(WINDOW + 300)
def test_three_replicas_share_300_checks_each_polled_once_per_tick(
    replicas: list[Replica], source: CheckSource
) -> None:
    checks = [f"c{c:03d}" for c in range(CHECKS)]
    logs = lambda: "\n".join(f"--- {r.name} ---\n{r.daemon.logs()}" for r in replicas)  # noqa: E731
    owned = wait_for(lambda: settled(replicas, checks), 90, "the leases to settle at 100 ± 10 checks each", logs)
    # ticks of checks that changed hands before this point are over once every check ticked once more
    time.sleep(EVERY)
    skipped_before = {r.name: skipped(r) for r in replicas}
    start = time.time()
    time.sleep(WINDOW + EVERY)  # one more interval, so each check's last tick of the window is in
    skipped_after = {r.name: skipped(r) for r in replicas}
    after = shares(replicas)
    assert after == owned, "a check changed hands during the measured window"
    for r in replicas:
        assert owned_metric(r) == len(owned[r.name]), r.name
        assert abs(len(owned[r.name]) - SHARE) <= SHARE_SLACK, (r.name, len(owned[r.name]))

    owner = {c: name for name, share in owned.items() for c in share}
    ticks = round(WINDOW / EVERY)
    by_check = polls_by_check(list(source.polls), start, start + WINDOW)
    wrong: dict[str, object] = {}
    reported = 0.0  # ticks skipped by their holder, and so polled once less
    for check in checks:
        polls = sorted(by_check.get(check, []), key=lambda p: p.at)
        first = next((p.at for p in polls if p.at >= start), None)
        if first is None:
            wrong[check] = "not polled in the window"
            continue
        begin = first - EVERY / 2
        counted = [p for p in polls if begin <= p.at < begin + ticks * EVERY]
        strangers = {p.replica for p in counted} - {owner[check]}
        holder = owner[check]
        said = skipped_after[holder].get(check, 0.0) - skipped_before[holder].get(check, 0.0)
        if len(counted) > ticks or ticks - len(counted) > said or strangers:
            wrong[check] = {
                "polls": len(counted),
                "skipped": said,
                "by": sorted({p.replica for p in counted}),
                "owner": holder,
            }
        reported += ticks - len(counted)
    assert wrong == {}, (
        f"{len(wrong)} checks not polled once per tick by their holder (nor skipped): {list(wrong.items())[:5]}"
    )
    per_replica = {name: len(share) for name, share in owned.items()}
    print(
        f"window {WINDOW:g}s, {ticks} ticks per check, {CHECKS * ticks - reported:.0f} of {CHECKS * ticks} polled "
        f"(the rest skipped and reported by their holder), shares {per_replica}"
    )
