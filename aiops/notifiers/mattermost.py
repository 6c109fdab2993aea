"""Mattermost incoming-webhook notifier (Slack-compatible attachments)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field

from aiops.notifiers._http import HttpNotifier, HttpParams, color_of, facts, group_lines, link_list, truncate
from aiops.types import Message

TEXT_MAX = 16383  # Mattermost's post size limit (runes)


class MattermostParams(HttpParams):
    channel: str | None = Field(None, description="override the webhook's channel (if the webhook allows it)")
    username: str | None = Field(None, description="override the display name (if the server allows it)")
    icon_url: str | None = Field(None, description="override the profile picture")


class MattermostNotifier(HttpNotifier):
    """Mattermost incoming webhook: markdown text plus one coloured attachment with the evidence as fields.

    Why attachments and not Slack blocks: Mattermost implements Slack's *attachments* (colour bar, fields,
    title link) but not Block Kit; ``fallback`` is what its push notifications show.
    """

    Params: ClassVar[type[BaseModel]] = MattermostParams
    kind = "mattermost"

    def render(self, message: Message) -> dict[str, Any]:
        links = link_list(message)
        text = message.text
        members = group_lines(message)
        if members:
            text = "\n".join(f"- {line}" for line in members)
        if links:
            text += "\n\n" + " · ".join(f"[{label}]({url})" for label, url in links)
        attachment: dict[str, Any] = {
            "fallback": truncate(f"{message.title}: {message.text}", 1000),
            "color": color_of(message),
            "title": message.title,
            "text": truncate(text, 8000),
            "fields": [
                {"short": name in ("Check", "Severity", "State", "Incident"), "title": name, "value": value}
                for name, value in facts(message)
            ],
            "footer": f"aiops · {message.dedup_key}",
        }
        if "incident" in message.links:
            attachment["title_link"] = message.links["incident"]
        doc: dict[str, Any] = {"text": truncate(f"#### {message.title}", TEXT_MAX), "attachments": [attachment]}
        for key in ("channel", "username", "icon_url"):
            value = getattr(self.params, key)
            if value:
                doc[key] = value
        return doc
