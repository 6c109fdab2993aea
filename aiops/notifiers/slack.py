"""Slack incoming-webhook notifier: Block Kit blocks plus a plain-text fallback."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field

from aiops.durations import Duration
from aiops.notifiers._http import (
    SEVERITY_EMOJI,
    HttpNotifier,
    HttpParams,
    by_severity,
    facts,
    group_lines,
    link_list,
    truncate,
)
from aiops.types import Message

HEADER_MAX = 150  # header block plain_text
SECTION_MAX = 3000  # section text
FIELD_MAX = 2000  # each section field
MAX_FIELDS = 10
MAX_BLOCKS = 50
TEXT_MAX = 4000  # top-level text shown in notifications


class SlackParams(HttpParams):
    min_interval: Duration = Field(1.0, ge=0, description="Slack allows about one message per second per channel")
    username: str | None = Field(None, description="override the webhook's display name (legacy webhooks only)")


def escape(text: str) -> str:
    """Slack treats ``&``, ``<`` and ``>`` as markup (``<!channel>`` pings everyone): escape them.

    >>> escape("<!channel> a & b")
    '&lt;!channel&gt; a &amp; b'
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackNotifier(HttpNotifier):
    """Slack incoming webhook: a header, the evidence as fields, link buttons; text fallback for previews.

    Why blocks *and* text: blocks render the message in the channel, ``text`` is what notifications, screen
    readers and old clients show. Slack answers 400 invalid_payload, 403 action_prohibited, 404
    channel_not_found, 410 channel_is_archived (final) or 429 with Retry-After; ``min_interval`` (1 s by
    default) keeps to Slack's one message per second per channel.
    """

    Params: ClassVar[type[BaseModel]] = SlackParams
    kind = "slack"

    def render(self, message: Message) -> dict[str, Any]:
        emoji = by_severity(message, ":white_check_mark:", SEVERITY_EMOJI, ":grey_question:")
        blocks: list[dict[str, Any]] = [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": truncate(message.title, HEADER_MAX), "emoji": True},
            },
        ]
        body = escape(message.text)
        members = group_lines(message)
        if members:
            body = "\n".join(f"• {escape(line)}" for line in members)
        if body:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": truncate(body, SECTION_MAX)}})
        fields = [
            {"type": "mrkdwn", "text": truncate(f"*{name}*\n{escape(value)}", FIELD_MAX)}
            for name, value in facts(message)
        ][:MAX_FIELDS]
        if fields:
            blocks.append({"type": "section", "fields": fields})
        links = link_list(message)
        if links:
            elements = []
            for label, url in links[:5]:
                button: dict[str, Any] = {"type": "button", "text": {"type": "plain_text", "text": label}, "url": url}
                if label == "Approve":
                    button["style"] = "primary"
                elif label == "Deny":
                    button["style"] = "danger"
                elements.append(button)
            blocks.append({"type": "actions", "elements": elements})
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": truncate(f"aiops · {message.event} · {message.dedup_key}", SECTION_MAX)}
                ],
            }
        )
        doc: dict[str, Any] = {
            "text": truncate(f"{emoji} {escape(message.title)}\n{escape(message.text)}", TEXT_MAX),
            "blocks": blocks[:MAX_BLOCKS],
        }
        if self.params.username:
            doc["username"] = self.params.username
        return doc
