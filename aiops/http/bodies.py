"""Request bodies of the daemon's own write endpoints, as pydantic models with limits.

The models are the schema twice over: they validate a request (a 400 naming the field) and their JSON
Schema is what ``/api/v1/openapi.json`` publishes, so the two cannot drift apart. The push endpoints' bodies
live with their parsers in :mod:`aiops.sources.ingest`.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema, field_validator

from aiops.durations import parse_duration
from aiops.sources.ingest import describe_validation_error, parse_time

MAX_COMMENT: Final = 2000
MAX_SILENCE: Final = 366 * 86400.0  # a silence longer than a year is a forgotten one; use a config change
_DURATION_SCHEMA: Final = {
    "description": 'how long: "30m", "1h30m", "2d" or a number of seconds (at most 366 days)',
    "anyOf": [
        {"type": "string", "minLength": 1, "maxLength": 32, "pattern": r"^\s*[0-9][0-9a-z. ]*$"},
        {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_SILENCE},
    ],
}


class RequestBody(BaseModel):
    """Unknown fields are refused: a typo (``"coment"``) must not be silently ignored."""

    model_config = ConfigDict(extra="forbid")


class EmptyBody(RequestBody):
    """Endpoints without parameters take no body, ``{}``, or nothing at all."""


class CommentBody(RequestBody):
    """Acknowledge an incident, with an optional comment for the audit trail."""

    comment: str | None = Field("", max_length=MAX_COMMENT, description="shown in the audit trail")


class SilenceBody(CommentBody):
    """Silence an incident's notifications for a while."""

    duration: Annotated[float, WithJsonSchema(_DURATION_SCHEMA)]

    @field_validator("duration", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError('must be a string such as "1h" or a number of seconds')
        if isinstance(value, str) and len(value) > 32:
            raise ValueError("longer than 32 characters")
        seconds = parse_duration(value)
        if not 0 < seconds <= MAX_SILENCE:
            raise ValueError(f"must be positive and at most {MAX_SILENCE / 86400:.0f} days")
        return seconds


_TIME_SCHEMA: Final = {
    "description": 'epoch seconds or an ISO 8601 time ("2026-12-04T13:00:00Z"; without a zone: UTC)',
    "anyOf": [{"type": "string", "minLength": 1, "maxLength": 40}, {"type": "number"}],
}
_ACTOR_FIELD: Final = Field(
    None,
    max_length=64,
    pattern=r"^[A-Za-z0-9_.@:-]+$",
    description='who gives the verdict (a user name); recorded as "api:<actor>" (just "api" when absent)',
)


def _time(value: Any) -> float:
    if isinstance(value, str) and len(value) > 40:
        raise ValueError("longer than 40 characters")
    return parse_time(value)


class VerdictBody(CommentBody):
    """Judge an incident: worth a person's attention (useful) or not (noise). The newest verdict counts."""

    verdict: Literal["useful", "noise"] = Field(description="useful or noise")
    actor: str | None = _ACTOR_FIELD


class MissedBody(CommentBody):
    """A finding that should have opened an incident of ``check`` between ``from`` and ``to``, and did not."""

    check: str = Field(min_length=1, max_length=100, description="the check that should have fired")
    starts_at: Annotated[float, WithJsonSchema(_TIME_SCHEMA)] = Field(alias="from")
    ends_at: Annotated[float, WithJsonSchema(_TIME_SCHEMA)] = Field(alias="to")
    actor: str | None = _ACTOR_FIELD

    @field_validator("starts_at", "ends_at", mode="before")
    @classmethod
    def _epoch(cls, value: Any) -> float:
        return _time(value)


_Body = TypeVar("_Body", bound=RequestBody)


def validate_body(model: type[_Body], data: dict[str, Any]) -> _Body:
    """``data`` as ``model``, or :class:`aiops.errors.InvalidInput` naming the first field at fault."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise describe_validation_error(exc) from None

