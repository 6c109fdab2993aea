"""A notifier: appends each message as one JSON line to a file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from aiops.errors import DeliveryError
from aiops.plugins import Notifier
from aiops.types import Delivery, Message


class JsonLinesParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="file the messages are appended to")


class JsonLinesNotifier(Notifier):
    """Appends each message to a JSON-lines file (example third-party notifier)."""

    Params = JsonLinesParams
    params: JsonLinesParams

    @classmethod
    def test_params(cls) -> list[dict[str, Any]]:
        return [{"path": "messages.jsonl"}]

    def send(self, message: Message) -> Delivery:
        line = {"event": message.event, "check": message.incident.check, "title": message.title}
        try:
            with Path(self.params.path).open("a", encoding="utf-8") as out:
                out.write(json.dumps(line) + "\n")
        except OSError as exc:  # a full disk may clear up; the outbox retries recoverable failures
            raise DeliveryError(f"cannot append to {self.params.path}: {exc}", recoverable=True) from None
        return Delivery(receiver=f"file {self.params.path}")
