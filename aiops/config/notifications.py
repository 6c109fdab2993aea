"""Configuration of the notification pipeline: routes, silences, flap control (the ``routes``, ``silences``
and ``flapping`` sections of the config file).

Why a routing tree as data: like Alertmanager's, it can be validated by ``aiops check-config`` through the very
loader ``aiops run`` uses, and changed without touching checks. A check's ``policy.notify`` still names the
receivers that always get its messages; routes add receivers by label/severity and set how messages to them
are grouped and repeated.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aiops.durations import Duration
from aiops.matchers import Matcher, Matchers, MatchOp, normalise


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RouteConfig(_Strict):
    """One route: which messages it takes (all matchers must match) and where and how they go."""

    match: dict[str, str] = Field(
        default_factory=dict,
        description='shorthand for matchers `label="value"` (all must match); read into `matchers` at load',
    )
    matchers: Matchers = Field(
        default_factory=list,
        description='Alertmanager matchers, all must match: `a="b"`, `a!="b"`, `a=~"re"`, `a!~"re"`, `{a="b", c="d"}`',
    )
    severity: list[str] = Field(default_factory=list, description="only these severities (default: any)")
    receivers: list[str] = Field(min_length=1, description="names of notifiers (under `notifiers`)")
    continue_: bool = Field(False, alias="continue", description="keep evaluating later routes after a match")
    group_by: list[str] = Field(
        default_factory=list, description="labels that make a group; messages of one group go as one (empty: none)"
    )
    group_wait: Duration = Field(30.0, ge=0, description="wait this long after a group's first message")
    group_interval: Duration = Field(300.0, ge=0, description="minimum time between two messages of one group")
    repeat_interval: Duration = Field(0.0, ge=0, description="re-send while still firing (0: never)")
    repeat_backoff: float = Field(2.0, ge=1.0, description="each repeat waits this many times longer")
    max_repeat_interval: Duration = Field(86400.0, gt=0, description="cap of the growing repeat interval")

    @field_validator("severity")
    @classmethod
    def _severity(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if v not in ("info", "warning", "critical")]
        if bad:
            raise ValueError(f"unknown severity {', '.join(bad)}; use info, warning or critical")
        return value

    @model_validator(mode="after")
    def _fold_match(self) -> RouteConfig:
        """``match`` is Alertmanager's ``label="value"``: one grammar decides, so it joins ``matchers``.

        The one difference from reading ``match`` literally: ``{label: ""}`` also takes a message without
        that label, as in Alertmanager, where a missing label is an empty one.
        """
        if self.match:
            exact = [str(Matcher(name, MatchOp.EQUAL, value)) for name, value in self.match.items()]
            self.matchers = normalise([*self.matchers, *exact])
            self.match = {}
        return self

    def timing(self) -> dict[str, Any]:
        """What the outbox stores with a queued row, so a reload never re-times an already queued message."""
        return {
            "group_wait": self.group_wait,
            "group_interval": self.group_interval,
            "repeat_interval": self.repeat_interval,
            "repeat_backoff": self.repeat_backoff,
            "max_repeat_interval": self.max_repeat_interval,
        }


class SilenceConfig(_Strict):
    """A silence written in the config: messages matching every matcher are not sent until ``until``."""

    matchers: Matchers = Field(
        min_length=1, description='Alertmanager matchers, all must match: `a="b"`, `a!="b"`, `a=~"re"`, `a!~"re"`'
    )
    until: float | None = Field(None, description="unix time it expires (default: never)")
    comment: str = Field("", description="why")

    @field_validator("matchers")
    @classmethod
    def _not_everything(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("a silence needs at least one matcher (an empty group would silence everything)")
        return value

    @field_validator("until", mode="before")
    @classmethod
    def _until(cls, value: Any) -> Any:
        if isinstance(value, str):
            from datetime import datetime

            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError as exc:
                raise ValueError("expected unix seconds or an ISO 8601 time, e.g. 2026-01-31T12:00:00Z") from exc
        if hasattr(value, "timestamp"):  # YAML parses bare timestamps into datetime
            return value.timestamp()
        return value


class FlappingConfig(_Strict):
    """An incident fingerprint that opens ``threshold`` times within ``window`` is held as flapping."""

    enabled: bool = Field(True, description="turn flap detection off")
    threshold: int = Field(4, ge=2, description="openings within the window that make it flapping")
    window: Duration = Field(1800.0, gt=0, description="look-back window; also how long it must stay quiet")

    @model_validator(mode="after")
    def _sane(self) -> FlappingConfig:
        return self
