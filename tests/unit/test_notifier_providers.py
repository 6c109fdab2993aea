"""Slack, Teams, Discord, Mattermost and PagerDuty notifiers against a real local HTTP receiver.

Each payload is validated against a JSON schema written from the provider's documentation (limits included:
Slack's 50 blocks / 150-char header / 3000-char section, Discord's 2000-char content / 10 embeds / 6000 chars
per embed, PagerDuty's required payload fields and severities, the Adaptive Card envelope Teams Workflows
expect). Then the failure answers: final (400/403/404/410) vs retryable (429 + Retry-After, 5xx, timeout,
connection refused), and no secret in any error message.
"""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from aiops.engine.messages import build_message
from aiops.errors import DeliveryError
from aiops.plugins import NOTIFIERS, build
from aiops.testing import incident_record
from aiops.types import Message
from tests.servers import WebhookReceiver, free_port

PATH_SECRET = "T000/B000/pathsecret0123456789"
ROUTING_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"  # 32 characters, like a real integration key

# -- schemas written from the providers' documentation ------------------------------------------------------

_TEXT = {"type": "object", "required": ["type", "text"], "properties": {"type": {"enum": ["plain_text", "mrkdwn"]}}}
SLACK = {
    "type": "object",
    "required": ["text", "blocks"],
    "properties": {
        "text": {"type": "string", "minLength": 1, "maxLength": 40000},
        "blocks": {
            "type": "array",
            "minItems": 1,
            "maxItems": 50,
            "items": {
                "type": "object",
                "required": ["type"],
                "oneOf": [
                    {
                        "properties": {
                            "type": {"const": "header"},
                            "text": {
                                "allOf": [_TEXT],
                                "properties": {"type": {"const": "plain_text"}, "text": {"maxLength": 150}},
                            },
                        },
                        "required": ["text"],
                    },
                    {
                        "properties": {
                            "type": {"const": "section"},
                            "text": {"allOf": [_TEXT], "properties": {"text": {"maxLength": 3000, "minLength": 1}}},
                            "fields": {
                                "type": "array",
                                "maxItems": 10,
                                "items": {"allOf": [_TEXT], "properties": {"text": {"maxLength": 2000}}},
                            },
                        },
                        "anyOf": [{"required": ["text"]}, {"required": ["fields"]}],
                    },
                    {
                        "properties": {
                            "type": {"const": "actions"},
                            "elements": {
                                "type": "array",
                                "maxItems": 25,
                                "items": {
                                    "type": "object",
                                    "required": ["type", "text"],
                                    "properties": {
                                        "type": {"const": "button"},
                                        "text": {
                                            "properties": {"type": {"const": "plain_text"}, "text": {"maxLength": 75}}
                                        },
                                        "url": {"type": "string", "maxLength": 3000},
                                        "style": {"enum": ["primary", "danger"]},
                                    },
                                },
                            },
                        },
                        "required": ["elements"],
                    },
                    {
                        "properties": {
                            "type": {"const": "context"},
                            "elements": {"type": "array", "minItems": 1, "maxItems": 10, "items": _TEXT},
                        },
                        "required": ["elements"],
                    },
                ],
            },
        },
    },
}

TEAMS = {
    "type": "object",
    "required": ["type", "attachments"],
    "properties": {
        "type": {"const": "message"},
        "attachments": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["contentType", "content"],
                "properties": {
                    "contentType": {"const": "application/vnd.microsoft.card.adaptive"},
                    "content": {
                        "type": "object",
                        "required": ["type", "version", "body"],
                        "properties": {
                            "type": {"const": "AdaptiveCard"},
                            "version": {"type": "string", "pattern": r"^1\.[0-5]$"},
                            "body": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["type"],
                                    "properties": {
                                        "type": {"enum": ["TextBlock", "FactSet", "Image", "Container", "ColumnSet"]}
                                    },
                                    "allOf": [
                                        {
                                            "if": {"properties": {"type": {"const": "FactSet"}}},
                                            "then": {
                                                "required": ["facts"],
                                                "properties": {
                                                    "facts": {
                                                        "type": "array",
                                                        "items": {"type": "object", "required": ["title", "value"]},
                                                    }
                                                },
                                            },
                                        },
                                        {
                                            "if": {"properties": {"type": {"const": "TextBlock"}}},
                                            "then": {"required": ["text"]},
                                        },
                                    ],
                                },
                            },
                            "actions": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["type", "title", "url"],
                                    "properties": {"type": {"const": "Action.OpenUrl"}},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}

_EMBED = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 256},
        "description": {"type": "string", "maxLength": 4096},
        "url": {"type": "string"},
        "color": {"type": "integer", "minimum": 0, "maximum": 0xFFFFFF},
        "fields": {
            "type": "array",
            "maxItems": 25,
            "items": {
                "type": "object",
                "required": ["name", "value"],
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 256},
                    "value": {"type": "string", "minLength": 1, "maxLength": 1024},
                    "inline": {"type": "boolean"},
                },
            },
        },
        "footer": {"type": "object", "required": ["text"], "properties": {"text": {"maxLength": 2048}}},
        "image": {"type": "object", "required": ["url"]},
    },
}
DISCORD = {
    "type": "object",
    "anyOf": [{"required": ["content"]}, {"required": ["embeds"]}],
    "properties": {
        "content": {"type": "string", "maxLength": 2000},
        "embeds": {"type": "array", "maxItems": 10, "items": _EMBED},
        "username": {"type": "string", "maxLength": 80},
        "allowed_mentions": {"type": "object"},
        "attachments": {"type": "array"},
    },
}

MATTERMOST = {
    "type": "object",
    "anyOf": [{"required": ["text"]}, {"required": ["attachments"]}],
    "properties": {
        "text": {"type": "string", "maxLength": 16383},
        "channel": {"type": "string"},
        "username": {"type": "string"},
        "icon_url": {"type": "string"},
        "attachments": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["fallback"],
                "properties": {
                    "fallback": {"type": "string"},
                    "color": {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"},
                    "title": {"type": "string"},
                    "title_link": {"type": "string"},
                    "text": {"type": "string"},
                    "footer": {"type": "string"},
                    "fields": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["title", "value"],
                            "properties": {"short": {"type": "boolean"}},
                        },
                    },
                },
            },
        },
    },
}

PAGERDUTY = {
    "type": "object",
    "required": ["routing_key", "event_action"],
    "properties": {
        "routing_key": {"type": "string", "minLength": 32, "maxLength": 32},
        "event_action": {"enum": ["trigger", "acknowledge", "resolve"]},
        "dedup_key": {"type": "string", "minLength": 1, "maxLength": 255},
        "client": {"type": "string"},
        "client_url": {"type": "string"},
        "links": {"type": "array", "items": {"type": "object", "required": ["href"]}},
        "images": {"type": "array", "items": {"type": "object", "required": ["src"]}},
        "payload": {
            "type": "object",
            "required": ["summary", "source", "severity"],
            "properties": {
                "summary": {"type": "string", "minLength": 1, "maxLength": 1024},
                "source": {"type": "string", "minLength": 1},
                "severity": {"enum": ["critical", "error", "warning", "info"]},
                "timestamp": {"type": "string", "format": "date-time"},
                "component": {"type": "string"},
                "group": {"type": "string"},
                "class": {"type": "string"},
                "custom_details": {"type": "object"},
            },
        },
    },
    "allOf": [
        {"if": {"properties": {"event_action": {"const": "trigger"}}}, "then": {"required": ["payload"]}},
        {
            "if": {"properties": {"event_action": {"enum": ["acknowledge", "resolve"]}}},
            "then": {"required": ["dedup_key"]},
        },
    ],
}

SCHEMAS = {"slack": SLACK, "teams": TEAMS, "discord": DISCORD, "mattermost": MATTERMOST, "pagerduty": PAGERDUTY}


def validate(kind: str, document: Any) -> None:
    jsonschema.validate(document, SCHEMAS[kind], format_checker=jsonschema.FormatChecker())
    if kind == "discord":
        from aiops.notifiers.discord import embed_size

        assert all(embed_size(e) <= 6000 for e in document.get("embeds", []))


# -- messages ----------------------------------------------------------------------------------------------


def incident_row(**over: Any) -> dict[str, Any]:
    row = {
        "id": 42,
        "fingerprint": "fp0123456789abcdef012345",
        "check_name": "model-latency",
        "state": "firing",
        "severity": "critical",
        "summary": "p95 latency 512 ms is above 100 ms <!channel> & more",
        "labels": {"model": "ranker", "env": "prod"},
        "opened_at": 1_700_000_000.0,
        "evidence": {
            "findings": [
                {
                    "kind": "threshold",
                    "detector": "threshold",
                    "summary": "p95 high",
                    "evidence": {"value": 512.0, "upper": 100.0, "score": 1.0},
                },
                {
                    "kind": "drift",
                    "detector": "ks",
                    "summary": "drift",
                    "evidence": {
                        "columns": {
                            "age": {"test": "ks", "statistic": 0.41, "p_value": 1e-9, "drift": True},
                            "income": {"test": "ks", "statistic": 0.03, "p_value": 0.7, "drift": False},
                        }
                    },
                },
            ]
        },
        "attempts": 0,
        "rung": 0,
        "guard_note": None,
    }
    row.update(over)
    return row


def message(event: str = "firing", text: str = "p95 latency is high", **over: Any) -> Message:
    details = {"action_id": 7, "plan": {"description": "rollback ranker to v12"}} if event == "approval" else None
    return build_message(
        event,
        incident_record(**incident_row(**over)),
        text,
        dedup_key=f"fp:42:{event}",
        details=details,
        external_url="https://aiops.example.com",
        link_token="link-token",
    )


def make(kind: str, url: str, **extra: Any) -> Any:
    params: dict[str, Any] = {"url": url, "timeout": "2s", **extra}
    if kind == "pagerduty":
        params["routing_key"] = ROUTING_KEY
    if kind in ("slack", "discord", "teams"):
        params["min_interval"] = 0
    if kind == "discord":
        params.setdefault("plot", False)
    if kind == "alertmanager":
        params["headers"] = {"Authorization": f"Bearer {HEADER_SECRET}"}
    return build(NOTIFIERS, kind, params)


KINDS = ["slack", "teams", "discord", "mattermost", "pagerduty"]
FAIL_KINDS = [*KINDS, "alertmanager"]  # Alertmanager's payload is checked against a real one (integration)
HEADER_SECRET = "hdr-secret-token-987654"


@pytest.fixture(scope="module")
def shared_receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver()  # one server for the module: shutting one down costs half a second
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def receiver(shared_receiver: WebhookReceiver) -> WebhookReceiver:
    shared_receiver.clear()
    shared_receiver._script.clear()
    return shared_receiver


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("event", ["firing", "approval", "escalated", "resolved"])
def test_payload_matches_the_providers_schema_and_arrives(kind: str, event: str, receiver: WebhookReceiver) -> None:
    notifier = make(kind, f"{receiver.url}/hook/{PATH_SECRET}")
    delivery = notifier.send(message(event))
    assert delivery.status == 200
    [req] = receiver.requests
    assert req.method == "POST" and req.headers["content-type"] == "application/json"
    validate(kind, req.json)
    assert req.headers["x-aiops-dedup-key"] == f"fp:42:{event}"
    body = req.body.decode()
    if kind != "pagerduty" or event != "resolved":
        assert "model-latency" in body
    if event == "approval" and kind != "pagerduty":
        # signed approve/deny links (aiops/approval_links.py), escaped as each format needs
        assert "https://aiops.example.com/decide/7?decision=approve" in body.replace("\\u0026", "&")
        assert "decision=deny" in body


def test_slack_blocks_escape_markup_and_respect_limits() -> None:
    notifier = make("slack", "https://hooks.slack.com/services/" + PATH_SECRET)
    doc = notifier.render(message(text="<!here> " + "y" * 10_000))
    validate("slack", doc)
    validate("slack", notifier.render(message(summary="x" * 500)))  # long titles are cut to the header limit

    def mrkdwn(node: Any) -> list[str]:
        if isinstance(node, dict):
            own = [node["text"]] if node.get("type") == "mrkdwn" else []
            return own + [t for v in node.values() for t in mrkdwn(v)]
        if isinstance(node, list):
            return [t for v in node for t in mrkdwn(v)]
        return []

    texts = [*mrkdwn(doc), doc["text"]]
    assert all("<!" not in t for t in texts), "markup in incident text must never ping a channel"
    assert any("&lt;!here&gt;" in t for t in texts)
    fields = next(b for b in doc["blocks"] if "fields" in b)["fields"]
    assert any("age" in f["text"] for f in fields), "top drifted features shown"
    assert any("value=512" in f["text"] for f in fields), "evidence numbers shown"


def test_slack_default_rate_limit_is_one_per_second() -> None:
    assert build(NOTIFIERS, "slack", {"url": "https://hooks.slack.com/services/x"}).min_interval == 1.0


def test_discord_limits_content_and_embeds_for_a_big_group() -> None:
    from aiops.engine.outbox import group_payload
    from aiops.messages import message_to_payload, payload_to_message

    members = [message_to_payload(message(text="z" * 5000, id=i, summary="s" * 400)) for i in range(14)]
    grouped = payload_to_message(group_payload(members, "route0:check=model-latency"))
    doc = make("discord", "https://discord.com/api/webhooks/1/abc").render(grouped)
    validate("discord", doc)
    assert len(doc["embeds"]) == 10 and "(+4 more)" in doc["content"]
    assert doc["allowed_mentions"] == {"parse": []}


def test_discord_attaches_the_plot_as_multipart(receiver: WebhookReceiver) -> None:
    make("discord", f"{receiver.url}/api/webhooks/1/{PATH_SECRET}", plot=True).send(message())
    [req] = receiver.requests
    assert req.headers["content-type"].startswith("multipart/form-data")
    parsed = email.message_from_bytes(b"Content-Type: " + req.headers["content-type"].encode() + b"\r\n\r\n" + req.body)
    parts = {p.get_param("name", header="content-disposition"): p for p in parsed.get_payload()}
    import json

    doc = json.loads(parts["payload_json"].get_payload(decode=True))
    validate("discord", doc)
    assert doc["embeds"][0]["image"]["url"] == "attachment://plot.png"
    assert parts["files[0]"].get_payload(decode=True)[:8] == b"\x89PNG\r\n\x1a\n"


def test_pagerduty_actions_dedup_key_and_severity() -> None:
    pd = make("pagerduty", "http://127.0.0.1:1/v2/enqueue")
    trigger = pd.render(message("firing"), ROUTING_KEY)
    resolve = pd.render(message("resolved"), ROUTING_KEY)
    escalate = pd.render(message("escalated", severity="warning"), ROUTING_KEY)
    warn = pd.render(message("firing", severity="warning"), ROUTING_KEY)
    for doc in (trigger, resolve, escalate, warn):
        validate("pagerduty", doc)
    assert trigger["event_action"] == "trigger" and resolve["event_action"] == "resolve"
    assert trigger["dedup_key"] == resolve["dedup_key"] == escalate["dedup_key"]  # one alert per incident
    assert trigger["payload"]["severity"] == "critical"
    assert warn["payload"]["severity"] == "warning" and escalate["payload"]["severity"] == "critical"
    assert "payload" not in resolve
    assert trigger["client_url"] == "https://aiops.example.com/api/v1/incidents/42"


def test_pagerduty_rejects_unknown_severity_mapping() -> None:
    with pytest.raises(Exception, match="PagerDuty severities"):
        build(NOTIFIERS, "pagerduty", {"routing_key": ROUTING_KEY, "severity_map": {"critical": "sev1"}})


@pytest.mark.parametrize("kind", FAIL_KINDS)
@pytest.mark.parametrize("status", [400, 403, 404, 410])
def test_final_answers_are_not_retried(kind: str, status: int, receiver: WebhookReceiver) -> None:
    receiver.respond_with(status)
    with pytest.raises(DeliveryError) as info:
        make(kind, f"{receiver.url}/hook/{PATH_SECRET}").send(message())
    assert info.value.recoverable is False and info.value.reason == f"http_{status}"
    assert_no_secret(info.value)


@pytest.mark.parametrize("kind", FAIL_KINDS)
def test_retryable_answers_carry_retry_after(kind: str, receiver: WebhookReceiver) -> None:
    receiver.respond_with((429, {"Retry-After": "7"}), 500, 503)
    notifier = make(kind, f"{receiver.url}/hook/{PATH_SECRET}")
    errors = []
    for _ in range(3):
        with pytest.raises(DeliveryError) as info:
            notifier.send(message())
        errors.append(info.value)
    assert [e.recoverable for e in errors] == [True, True, True]
    assert errors[0].retry_after == 7.0 and errors[0].reason == "http_429"
    assert notifier.send(message()).status == 200
    for e in errors:
        assert_no_secret(e)


def test_discord_retry_after_from_the_body() -> None:
    from aiops.notifiers.discord import _retry_after

    assert _retry_after({"message": "You are being rate limited.", "retry_after": 0.64, "global": False}) == 0.64


@pytest.mark.parametrize("kind", FAIL_KINDS)
def test_connection_refused_and_timeout_are_retryable(kind: str) -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(DeliveryError) as refused:
        make(kind, f"http://127.0.0.1:{port}/hook/{PATH_SECRET}").send(message())
    assert refused.value.recoverable and refused.value.reason == "connection"
    assert_no_secret(refused.value)
    with socket.socket() as silent:  # accepts the TCP connection (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook/{PATH_SECRET}"
        with pytest.raises(DeliveryError) as timeout:
            make(kind, url, timeout="0.3s").send(message())
    assert timeout.value.recoverable and timeout.value.reason == "timeout"
    assert_no_secret(timeout.value)


def assert_no_secret(exc: BaseException) -> None:
    text = str(exc) + repr(exc)
    for secret in (PATH_SECRET, "pathsecret0123456789", ROUTING_KEY, HEADER_SECRET):
        assert secret not in text, text


def test_pagerduty_error_never_contains_the_routing_key(receiver: WebhookReceiver) -> None:
    """The routing key travels in the body, so it must not come back in an error (or a log line)."""
    receiver.respond_with(400)
    pd = make("pagerduty", f"{receiver.url}/v2/enqueue/{PATH_SECRET}")
    with pytest.raises(DeliveryError) as info:
        pd.send(message())
    assert_no_secret(info.value)
    assert ROUTING_KEY in receiver.requests[0].body.decode()  # it was sent, as it must be
