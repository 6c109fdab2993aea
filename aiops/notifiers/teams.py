"""Microsoft Teams notifier: a Workflows (Power Automate) webhook posting an Adaptive Card."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field

from aiops.durations import Duration
from aiops.notifiers._http import HttpNotifier, HttpParams, by_severity, facts, group_lines, link_list, truncate
from aiops.types import Message

CARD_VERSION = "1.4"  # the highest version Teams renders from a Workflows webhook
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_COLOR = {"critical": "Attention", "warning": "Warning"}  # Adaptive Card colour names


class TeamsParams(HttpParams):
    min_interval: Duration = Field(0.25, ge=0, description="Teams webhooks take about 4 requests per second")


class TeamsNotifier(HttpNotifier):
    """Microsoft Teams via a Workflows webhook: an Adaptive Card with facts and Open-URL buttons.

    Why Workflows and Adaptive Cards: Office 365 connectors (MessageCard) are retired; the "Post to a channel
    when a webhook request is received" workflow takes ``{"type": "message", "attachments": [card]}`` and
    answers 202 Accepted.
    """

    Params: ClassVar[type[BaseModel]] = TeamsParams
    kind = "teams"

    def render(self, message: Message) -> dict[str, Any]:
        color = by_severity(message, "Good", CARD_COLOR, "Accent")
        body: list[dict[str, Any]] = [
            {
                "type": "TextBlock",
                "text": truncate(message.title, 300),
                "weight": "Bolder",
                "size": "Medium",
                "color": color,
                "wrap": True,
            },
        ]
        members = group_lines(message)
        text = "\n".join(f"- {line}" for line in members) if members else message.text
        if text:
            body.append({"type": "TextBlock", "text": truncate(text, 4000), "wrap": True})
        body.append(
            {
                "type": "FactSet",
                "facts": [{"title": name, "value": truncate(value, 1000)} for name, value in facts(message)],
            }
        )
        card: dict[str, Any] = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": CARD_VERSION,
            "body": body,
            "msteams": {"width": "Full"},
        }
        actions = [{"type": "Action.OpenUrl", "title": label, "url": url} for label, url in link_list(message)]
        if actions:
            card["actions"] = actions
        return {
            "type": "message",
            "summary": truncate(message.title, 200),
            "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}],
        }
