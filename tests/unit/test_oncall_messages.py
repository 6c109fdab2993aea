"""What an on-call engineer reads: RESOLVED messages that say what resolved, verification of a fix on a
quiet source that says why it failed (and ``verify.quiet``), and the API token the CLI sends."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiops.config.models import Settings
from tests.unit.test_engine import (
    Harness,
    _plugins,  # noqa: F401  (autouse: the test plugins, reset per test)
    policy,
)


def _sent(h: Harness, event: str) -> list[object]:
    h.outbox.tick()
    return [m for m in h.runtime.notifiers["capture"].messages if m.event == event]


def test_resolved_message_states_what_resolved_the_value_now_and_how_long(tmp_path: Path) -> None:
    h = Harness(tmp_path, policy("notify: [capture]\nverify: {settle: 5s, window: 60s}\nactions: [{type: recording}]"))
    h.tick(500)
    h.tick(500, step=30)  # still broken on the next tick: the incident lasts
    h.tick(55)  # healthy after the remediation
    assert h.incident().state.value == "resolved"
    (firing,) = _sent(h, "firing")
    (resolved,) = _sent(h, "resolved")
    assert "500" in firing.title
    assert resolved.title == "[RESOLVED] latency: value back to normal (now 55) after 40s", resolved.title
    assert "500" not in resolved.title  # the firing value is history, not the title
    assert resolved.details["resolution"]["was"] == firing.incident.summary
    assert resolved.details["doing"].startswith("resolved: verified: healthy after the remediation (it was: ")


def test_a_fix_on_a_quiet_source_says_no_fresh_data_arrived(tmp_path: Path) -> None:
    h = Harness(tmp_path, policy("notify: [capture]\nverify: {settle: 10s, window: 30s}\nactions: [{type: recording}]"))
    h.tick(500)
    assert h.incident().state.value == "verifying"
    for _ in range(5):
        h.tick()  # the remediation worked, but the source writes nothing new
    inc = h.incident()
    assert inc.state.value == "escalated"
    reasons = [t.reason for t in h.store.transitions(inc.id)]
    assert any(r.startswith("no fresh data arrived within 30s after the action (settle 10s)") for r in reasons), reasons
    assert not any(r.startswith("not healed") for r in reasons)


def test_still_broken_after_the_fix_says_not_healed(tmp_path: Path) -> None:
    h = Harness(tmp_path, policy("verify: {settle: 10s, window: 30s}\nactions: [{type: recording}]"))
    h.tick(500)
    for _ in range(5):
        h.tick(500)
    reasons = [t.reason for t in h.store.transitions(h.incident().id)]
    assert "not healed within 30s of the action" in reasons


@pytest.mark.parametrize(
    ("quiet", "state"), [("healthy", "resolved"), ("unhealthy", "escalated"), ("wait", "verifying")]
)
def test_verify_quiet_decides_what_a_quiet_tick_counts_as(tmp_path: Path, quiet: str, state: str) -> None:
    h = Harness(
        tmp_path, policy(f"verify: {{settle: 15s, window: 5m, quiet: {quiet}}}\nactions: [{{type: recording}}]")
    )
    h.tick(500)
    h.tick()  # quiet, but still settling: counts as nothing whatever the setting
    assert h.incident().state.value == "verifying"
    h.tick()  # quiet after settling
    assert h.incident().state.value == state
    if quiet == "healthy":
        assert "verify.quiet: healthy" in h.store.transitions(h.incident().id)[-1].reason


def test_cli_and_daemon_resolve_the_api_token_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aiops.cli import auth_headers
    from aiops.config.loader import api_token

    (tmp_path / "token").write_text("from-file\n")
    monkeypatch.setenv("AIOPS_API_TOKEN", "from-env")
    settings = Settings.model_validate({"server": {"token_file": str(tmp_path / "token")}})
    assert api_token(settings) == "from-file"
    assert auth_headers(settings) == {"Authorization": "Bearer from-file"}
    monkeypatch.delenv("AIOPS_API_TOKEN")
    assert auth_headers(Settings.model_validate({})) == {}
