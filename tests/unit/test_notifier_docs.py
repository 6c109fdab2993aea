"""docs/notifications.md stays true: every notifier has a config block that the real loader accepts, and the
webhook verification snippet verifies real aiops signatures (and rejects forged and replayed ones)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from aiops import plugins
from aiops.config.loader import parse_config
from aiops.signing import sign

DOC = (Path(__file__).resolve().parents[2] / "docs" / "notifications.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", DOC, flags=re.S)
ENV = {
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/x",
    "TEAMS_WORKFLOW_URL": "https://prod.example.logic.azure.com/workflows/x",
    "DISCORD_WEBHOOK_URL": "https://discord.com/api/webhooks/1/x",
    "MATTERMOST_WEBHOOK_URL": "https://mattermost.example.com/hooks/x",
}


def yaml_blocks() -> list[str]:
    return [body for lang, body in BLOCKS if lang == "yaml"]


@pytest.mark.parametrize("name", sorted(plugins.available(plugins.NOTIFIERS)))
def test_every_notifier_has_a_documented_config_block(name: str) -> None:
    blocks = [b for b in yaml_blocks() if f"type: {name}\n" in b]
    assert blocks, f"docs/notifications.md has no config block for {name}"
    for block in blocks:
        parse_config(block, "notifications.md", env=ENV)  # the loader `aiops run` uses


def test_routes_silences_and_flapping_blocks_validate() -> None:
    notifiers = "notifiers:\n" + "".join(
        f"  {n}: {{type: webhook, url: 'http://x'}}\n" for n in ("pagerduty", "slack-ml", "email")
    )
    for block in yaml_blocks():
        if block.startswith(("routes:", "silences:", "flapping:")):
            parse_config(notifiers + block, "notifications.md", env=ENV)


def test_verification_snippet_accepts_aiops_signatures_only() -> None:
    [snippet] = [body for lang, body in BLOCKS if lang == "python" and "def verify_aiops_signature" in body]
    namespace: dict[str, object] = {}
    exec(compile(snippet, "notifications.md", "exec"), namespace)
    check = namespace["verify_aiops_signature"]
    assert callable(check)
    body, secret = b'{"event":"firing"}', b"s3cret-key"
    now = int(time.time())
    assert check(secret, body, sign(secret, body, now))
    assert not check(secret, body + b" ", sign(secret, body, now))  # tampered
    assert not check(b"other", body, sign(secret, body, now))  # forged
    assert not check(secret, body, sign(secret, body, now - 3600))  # replayed an hour later
    assert not check(secret, body, None) and not check(secret, body, "t=x,v1=00")
