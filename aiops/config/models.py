"""The configuration schema. These models are the single source of truth for what a config may say; the
reference in docs/configuration.md is written from them.

Plugin blocks (``source``, ``detectors``, ``actions``, ``notifiers``) are ``{type: NAME, ...params}``; here
they are kept as raw mappings and validated in a second pass against the plugin's own ``Params`` model, so
that a third-party plugin's parameters get the same file:line errors as the built-ins.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from aiops.config.notifications import FlappingConfig, RouteConfig, SilenceConfig
from aiops.durations import Duration

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _plugin_block(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("expected a mapping with a 'type' key")
    if "type" not in value:
        raise ValueError("missing 'type' (the plugin name)")
    if not isinstance(value["type"], str):
        raise ValueError("'type' must be a string")
    return value


PluginBlock = Annotated[dict[str, Any], BeforeValidator(_plugin_block)]


class ActionMode(enum.StrEnum):
    AUTO = "auto"  # run it
    DRY_RUN = "dry-run"  # record the plan, do nothing
    OBSERVE = "observe"  # log only, not even a ledger plan to approve
    APPROVE = "approve"  # wait for a person to approve (API / CLI), with a timeout and a default


class ActionConfig(Strict):
    """One rung of the escalation ladder: a remediation plugin plus how it may run."""

    type: str = Field(description="remediation plugin name (see `aiops plugins`)")
    name: str | None = Field(None, description="label of this rung in the ledger and messages (default: type)")
    mode: ActionMode = Field(ActionMode.AUTO, description="auto, dry-run, observe or approve")
    dry_run: bool = Field(False, description="shorthand for `mode: dry-run`")
    approval_timeout: Duration = Field(900.0, description="how long an `approve` action waits for a person")
    on_approval_timeout: str = Field(
        "reject", pattern="^(reject|approve)$", description="what happens when nobody decided in time"
    )
    timeout: Duration = Field(300.0, description="execution deadline (also passed to plugins with a timeout)")
    retries: int = Field(0, ge=0, description="re-run this rung up to N more times (with backoff) before the next")
    max_runs: int | None = Field(
        None, ge=0, description="rate budget: runs of this action type (all checks) per `safety.window`"
    )
    breaker_failures: int = Field(
        5, ge=0, description="open this action type's circuit breaker after N consecutive failures (0: never)"
    )
    breaker_reset: Duration = Field(600.0, description="an open breaker lets one trial through after this long")
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _split_params(cls, value: Any) -> Any:
        """Everything not an ActionConfig field is the plugin's own parameter."""
        value = _plugin_block(value)
        own = {"type", "name", "mode", "approval_timeout", "on_approval_timeout", "timeout", "dry_run"}
        own |= {"retries", "max_runs", "breaker_failures", "breaker_reset"}
        data = {k: v for k, v in value.items() if k in own}
        if data.get("dry_run") is True:
            data["mode"] = ActionMode.DRY_RUN
        data["params"] = {k: v for k, v in value.items() if k not in own}
        return data

    @property
    def label(self) -> str:
        return self.name or self.type


class QuietVerify(enum.StrEnum):
    """What verification makes of ticks that bring no fresh data after the action (a batch source between
    batches, a pipeline that writes hourly). No data is not health, so the default waits for data."""

    WAIT = "wait"  # keep waiting for fresh data; none by the end of the window: not healed (next rung)
    HEALTHY = "healthy"  # a quiet tick after settling counts as a healthy evaluation
    UNHEALTHY = "unhealthy"  # a quiet tick after settling fails the verification at once (next rung)


class VerifyConfig(Strict):
    """How an action's effect is judged: after ``settle``, a healthy evaluation within ``window`` heals."""

    settle: Duration = Field(0.0, description="ignore evaluations this soon after the action")
    window: Duration = Field(300.0, description="healed if healthy within this long after settling, else next rung")
    healthy_ticks: int = Field(1, ge=1, description="consecutive healthy evaluations needed")
    promql: str | None = Field(
        None, description="also require this PromQL expression to return no series (like an alert rule's expr)"
    )
    prometheus_url: str | None = Field(None, description="Prometheus base URL for `promql`")
    command: list[str] | None = Field(None, description="also require this argv to exit 0 (a custom check)")
    probe_timeout: Duration = Field(10.0, description="timeout of the promql query / command")
    quiet: QuietVerify = Field(
        QuietVerify.WAIT,
        description="a tick without fresh data after settling: `wait` for data (none within the window: not "
        "healed), count it as `healthy`, or as `unhealthy` at once",
    )

    @model_validator(mode="after")
    def _probe(self) -> VerifyConfig:
        if self.promql and not self.prometheus_url:
            raise ValueError("'promql' needs 'prometheus_url'")
        if self.command is not None and not self.command:
            raise ValueError("'command' must name a program")
        return self


class PolicyConfig(Strict):
    """What to do when a check finds something: wait, act (ladder), verify, escalate, notify."""

    for_: Duration = Field(0.0, alias="for", description="a finding must persist this long before firing")
    cooldown: Duration = Field(300.0, description="minimum time between two actions on the same target")
    max_attempts: int = Field(3, ge=0, description="executed actions per incident before escalating")
    backoff: float = Field(
        2.0, ge=1.0, description="cooldown multiplier for each further action on the same target (exponential)"
    )
    max_cooldown: Duration = Field(3600.0, description="cap of the backed-off cooldown")
    max_attempts_per_window: int | None = Field(
        None, ge=0, description="executed actions of this check (all incidents) per `attempts_window`"
    )
    attempts_window: Duration = Field(3600.0, description="window of `max_attempts_per_window`")
    verify: VerifyConfig = Field(default_factory=lambda: VerifyConfig.model_validate({}))
    actions: list[ActionConfig] = Field(default_factory=list, description="the escalation ladder, in order")
    notify: list[str] = Field(default_factory=list, description="names of notifiers (under `notifiers`)")
    resolve_after: Duration = Field(0.0, description="a firing incident resolves after being healthy this long")


class SafetyConfig(Strict):
    """Daemon-wide budgets, counted from the durable action ledger over a sliding window."""

    window: Duration = Field(3600.0, description="sliding window of the budgets below and of `max_runs`")
    max_actions: int | None = Field(None, ge=0, description="executed actions of any kind per window")
    max_targets: int | None = Field(None, ge=0, description="blast radius: distinct targets acted on per window")


class CheckConfig(Strict):
    name: str = Field(description="unique name; part of every incident fingerprint")
    every: Duration | None = Field(None, description="run interval, e.g. 30s (or give `cron`)")
    cron: str | None = Field(None, description="crontab schedule in UTC, e.g. '*/5 * * * *'")
    timeout: Duration | None = Field(None, description="abandon a run after this long (default: every, max 60s)")
    source: PluginBlock = Field(description="`{type: NAME, ...}`: where telemetry comes from")
    detectors: list[PluginBlock] = Field(min_length=1, description="`[{type: NAME, ...}]`: what is wrong")
    policy: PolicyConfig = Field(default_factory=lambda: PolicyConfig.model_validate({}))
    labels: dict[str, str] = Field(default_factory=dict, description="labels added to every incident")
    severity: str | None = Field(
        None, pattern="^(info|warning|critical)$", description="override the findings' severity"
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use letters, digits, '_', '-' or '.', starting with a letter or digit")
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            from apscheduler.triggers.cron import CronTrigger

            try:
                CronTrigger.from_crontab(value)
            except ValueError as exc:
                raise ValueError(f"not a crontab expression: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _schedule(self) -> CheckConfig:
        if (self.every is None) == (self.cron is None):
            raise ValueError("give exactly one of 'every' (e.g. 30s) or 'cron' (e.g. '*/5 * * * *')")
        if self.every is not None and self.every <= 0:
            raise ValueError("'every' must be positive")
        return self

    @property
    def effective_timeout(self) -> float:
        if self.timeout is not None:
            return self.timeout
        return max(1.0, min(self.every or 60.0, 60.0))


class StoreConfig(Strict):
    url: str = Field("sqlite:///aiops-data/aiops.db", description="SQLAlchemy URL of the durable store")


class ServerConfig(Strict):
    listen: str = Field("127.0.0.1:9464", description="HOST:PORT (overridden by `aiops run --listen`)")
    token: str | None = Field(None, description="bearer token for POST endpoints (or AIOPS_API_TOKEN)")
    token_file: str | None = Field(None, description="file holding the token")
    ui_read_token: str | None = Field(
        None,
        description="token that lets the web console (/ui/) be read without the write token; unset: the "
        "console is readable without any token on a loopback listener, and only with a token otherwise",
    )
    ui_read_token_file: str | None = Field(None, description="file holding ui_read_token")
    external_url: str | None = Field(None, description="base URL used in links inside notifications")

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        _host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not (0 <= int(port) <= 65535):
            raise ValueError("expected HOST:PORT, e.g. 127.0.0.1:9464")
        return value


class StateConfig(Strict):
    checkpoint: Duration = Field(
        60.0,
        ge=0.0,
        description="save changed detector state this often (and at shutdown); a restart re-reads what came after",
    )


class ClusterConfig(Strict):
    lease: Duration = Field(
        15.0,
        ge=1.0,
        description="how long a replica owns a check after its last renewal (renewed every second); a "
        "replica that stops renewing loses its checks to the others within this long",
    )


class LogConfig(Strict):
    level: str = Field("info", pattern="^(debug|info|warning|error)$", description="debug, info, warning, error")
    json_: bool | None = Field(None, alias="json", description="force JSON lines (true) or console (false)")


class Settings(Strict):
    """The whole configuration file."""

    store: StoreConfig = Field(default_factory=lambda: StoreConfig.model_validate({}))
    server: ServerConfig = Field(default_factory=lambda: ServerConfig.model_validate({}))
    log: LogConfig = Field(default_factory=lambda: LogConfig.model_validate({}))
    state: StateConfig = Field(
        default_factory=lambda: StateConfig.model_validate({}), description="detector state checkpoints"
    )
    cluster: ClusterConfig = Field(
        default_factory=lambda: ClusterConfig.model_validate({}), description="replicas sharing one store"
    )
    state_dir: str = Field("aiops-data", description="files of running actions (status files) live here")
    workers: int = Field(
        16,
        ge=1,
        le=64,
        description="a replica's scheduler threads (read at start): at most this many checks run at once; more "
        "help checks whose sources wait on I/O, not CPU-bound detectors. Each may hold a store connection: "
        "PostgreSQL must allow replicas x (workers + 4) connections",
    )
    dry_run: bool = Field(False, description="global dry-run: every `auto` action only records its plan")
    safety: SafetyConfig = Field(
        default_factory=lambda: SafetyConfig.model_validate({}), description="global action and blast-radius budgets"
    )
    notifiers: dict[str, PluginBlock] = Field(default_factory=dict, description="NAME: `{type: ..., ...}`")
    checks: list[CheckConfig] = Field(default_factory=list, description="the checks to schedule")
    routes: list[RouteConfig] = Field(default_factory=list, description="routing tree: labels/severity -> receivers")
    silences: list[SilenceConfig] = Field(default_factory=list, description="standing silences (matchers, expiry)")
    flapping: FlappingConfig = Field(
        default_factory=lambda: FlappingConfig.model_validate({}), description="hold incidents that keep reopening"
    )
