"""Discord webhook notifier: a short content line and embeds, with the plot attached when there is one."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field

from aiops.durations import Duration
from aiops.notifiers._http import HttpNotifier, HttpParams, color_of, facts, group_lines, link_list, truncate
from aiops.types import Delivery, Message

CONTENT_MAX = 2000
MAX_EMBEDS = 10
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
MAX_FIELDS = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
EMBED_TOTAL_MAX = 6000


class DiscordParams(HttpParams):
    min_interval: Duration = Field(0.5, ge=0, description="Discord allows about 5 requests per 2 s per webhook")
    username: str | None = Field(None, description="override the webhook's name")
    plot: bool = Field(True, description="attach a small PNG plot of the series or the drifted features")


def _retry_after(body: Any) -> float | None:
    """Discord's 429 body carries ``retry_after`` in seconds."""
    value = body.get("retry_after") if isinstance(body, dict) else None
    return float(value) if isinstance(value, int | float) else None


def embed_size(embed: dict[str, Any]) -> int:
    """Characters Discord counts against the 6000 limit (title, description, fields, footer, author)."""
    n = len(embed.get("title", "")) + len(embed.get("description", ""))
    n += sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))
    n += len(embed.get("footer", {}).get("text", "")) + len(embed.get("author", {}).get("name", ""))
    return n


class DiscordNotifier(HttpNotifier):
    """Discord execute-webhook: ``content`` (≤ 2000 chars) and up to 10 embeds (each ≤ 6000 chars).

    Why the limits are enforced here: Discord answers a generic 400 for any exceeded limit, which would turn
    a long summary into a lost alert. A group message gets one embed per incident (at most 10, the rest
    counted in the content line).
    """

    Params: ClassVar[type[BaseModel]] = DiscordParams
    kind = "discord"

    def _embed(self, message: Message) -> dict[str, Any]:
        embed: dict[str, Any] = {
            "title": truncate(message.title, TITLE_MAX),
            "description": truncate(message.text, DESCRIPTION_MAX),
            "color": int(color_of(message).lstrip("#"), 16),
            "fields": [
                {
                    "name": truncate(name, FIELD_NAME_MAX),
                    "value": truncate(value or "-", FIELD_VALUE_MAX),
                    "inline": name in ("Check", "Severity", "State", "Incident"),
                }
                for name, value in facts(message)
            ][:MAX_FIELDS],
            "footer": {"text": truncate(f"aiops · {message.dedup_key}", FOOTER_MAX)},
        }
        if "incident" in message.links:
            embed["url"] = message.links["incident"]
        while embed_size(embed) > EMBED_TOTAL_MAX and embed["fields"]:
            embed["fields"].pop()
        return embed

    def render(self, message: Message) -> dict[str, Any]:
        from aiops.messages import payload_to_message

        members = [payload_to_message(m) for m in message.details.get("group") or []]
        embeds = [self._embed(m) for m in members[:MAX_EMBEDS]] if members else [self._embed(message)]
        content = message.title
        if len(members) > MAX_EMBEDS:
            content += f" (+{len(members) - MAX_EMBEDS} more)"
        links = link_list(message)
        if links:
            content += "\n" + " · ".join(f"[{label}](<{url}>)" for label, url in links)
        if members:
            content += "\n" + "\n".join(f"- {line}" for line in group_lines(message))
        doc: dict[str, Any] = {
            "content": truncate(content, CONTENT_MAX),
            "embeds": embeds,
            "allowed_mentions": {"parse": []},  # an incident summary must never ping @everyone
        }
        if self.params.username:
            doc["username"] = self.params.username
        return doc

    def send(self, message: Message) -> Delivery:
        doc = self.render(message)
        files = None
        if self.params.plot and not message.details.get("group"):
            from aiops.messages import render_plot

            png = render_plot(message)
            if png:
                doc["embeds"][0]["image"] = {"url": "attachment://plot.png"}
                doc["attachments"] = [{"id": 0, "filename": "plot.png"}]
                files = {"files[0]": ("plot.png", png, "image/png")}
        return self.post_json(self.params.url, doc, message=message, files=files, retry_after_from_body=_retry_after)
