"""The one window in which a message reaches its receiver twice: the daemon is SIGKILLed after the receiver
answered 2xx and before the outbox row was marked sent (fault point ``notification.delivered``). The restarted
daemon takes the dead sender's claim at once, logs that it sends the message again, and sends it under the
same idempotency key, which is what lets the receiver drop the copy; nothing else is sent twice."""

from __future__ import annotations

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
        requests = [
            r
            for r in life.receiver.requests
            if isinstance(r.json, dict) and not r.json["incident"]["labels"].get("problem")  # the detector's incident
        ]
        keys = Counter((str(r.json["event"]), r.headers["idempotency-key"]) for r in requests if r.json)
        firing = [key for (event, key), n in keys.items() if event == "firing"]
        assert len(firing) == 1, keys  # both copies of the firing message carry one key
        assert keys[("firing", firing[0])] == 2 and end.deliveries == {"firing": 2, "resolved": 1}, keys
        assert firing[0].startswith(f"{requests[0].json['dedup_key']}/")
        resent = [line for line in life.daemon.log_path.read_text().splitlines() if RESENT in line]
        assert len(resent) == 1 and firing[0] in resent[0], resent
        assert end.final_state == "resolved" and end.executions == 1
    finally:
        life.close()
