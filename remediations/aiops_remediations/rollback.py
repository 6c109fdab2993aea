"""Roll a model back: ``champion`` to the previous good version, then tell the serving side to reload.

Why it is safe to repeat: the registry records the rollback under the action's idempotency key in the same
atomic write that moves the aliases, so a daemon killed anywhere in here and restarted finishes the same
rollback (and re-sends the idempotent reload) instead of rolling back one version further.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from aiops.errors import RegistryError
from aiops.plugins import Remediation
from aiops.registry import open_registry
from aiops.types import ActionContext, IncidentView, Outcome, Plan
from aiops_remediations.retrain import ReloadParams
from aiops_remediations.serving import reload_serving


class RollbackParams(BaseModel):
    """Parameters of the rollback remediation."""

    model_config = ConfigDict(extra="forbid")

    registry: str = Field(description="registry URI: a directory (filesystem registry) or mlflow:<tracking-uri>")
    model: str = Field(description="registered model name")
    reload: ReloadParams | None = None
    target: str | None = Field(None, description="blast-radius target (default model:<model>)")


class RollbackRemediation(Remediation):
    """Move the champion alias back to the previous good version and tell serving to reload."""

    Params: ClassVar[type[BaseModel]] = RollbackParams
    params: RollbackParams

    @classmethod
    def test_params(cls) -> list[dict[str, Any]]:
        return [{"registry": "models", "model": "churn"}]

    def plan(self, incident: IncidentView) -> Plan:
        p = self.params
        return Plan(
            action="rollback",
            description=f"move {p.model}@champion back to @previous in {p.registry} and reload serving",
            target=p.target or f"model:{p.model}",
            details={"registry": p.registry, "model": p.model},
        )

    def execute(self, plan: Plan, ctx: ActionContext) -> Outcome:
        p = self.params
        ctx.save_handle({"phase": "rollback", "model": p.model})
        reg = (self.context.model_registry if self.context is not None else open_registry)(p.registry)
        try:
            result = reg.rollback(p.model, key=ctx.idempotency_key, reason=f"incident {ctx.incident.id}")
        except RegistryError as exc:
            return Outcome(ok=False, summary=f"rollback failed: {exc}", recoverable=exc.recoverable)
        champion = str(result.champion)
        details = {"before": dict(result.before), "after": dict(result.after)}
        if p.reload is not None:
            problem = reload_serving(
                url=p.reload.url,
                argv=p.reload.argv,
                payload={"model": p.model, "version": champion, "alias": "champion", "key": ctx.idempotency_key},
                key=ctx.idempotency_key,
                timeout=p.reload.timeout,
            )
            if problem is not None:
                said = f"rolled back to version {champion} but {problem.reason}"
                return Outcome(ok=False, summary=said, details=details, recoverable=problem.retryable)
        before = result.before.get("champion")
        return Outcome(ok=True, summary=f"{p.model}@champion: version {before} -> {champion}", details=details)

    def resume(self, plan: Plan, ctx: ActionContext) -> Outcome | None:
        """The registry's op log makes re-running the same rollback a no-op plus a reload."""
        return self.execute(plan, ctx)
