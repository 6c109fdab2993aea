"""The one window in which a message reaches its receiver twice: the daemon is SIGKILLed after the receiver
answered 2xx and before the outbox row was marked sent (fault point ``notification.delivered``). The restarted
daemon takes the dead sender's claim at once, logs that it sends the message again, and sends it under the
same idempotency key, which is what lets the receiver drop the copy; nothing else is sent twice."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.crash import Life, new_store_url

RESENT = "sending again a message whose sender died while holding it; the receiver may get it twice"


@pytest.mark.slow
def test_a_sender_killed_between_the_answer_and_the_record_sends_it_again_under_the_same_key(tmp_path: Path) -> None:
    life = Life(tmp_path, new_store_url("sqlite", tmp_path, None), "auto")
    try:
        end = life.run("notification.delivered", timeout=120)  # 40 s by default; a shared CI machine can be slower
        # the first message delivered (the detector's firing one, or a notify-only one of a loaded machine)
        resent = [json.loads(line) for line in life.daemon.log_path.read_text().splitlines() if RESENT in line]
        assert len(resent) == 1, resent
        key = resent[0]["idempotency_key"]
        assert key.startswith(f"{resent[0]['dedup_key']}/")
        copies = Counter(r.headers["idempotency-key"] for r in life.receiver.requests)
        assert copies[key] == 2, copies  # both copies under the one key, so a receiver drops the second
        assert [k for k, n in copies.items() if n > 1] == [key], copies  # nothing else twice
        assert end.final_state == "resolved" and end.executions == 1
    finally:
        life.close()
