"""A remediation: writes a marker file under the daemon's state directory (a stand-in for a real fix)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from aiops.plugins import Remediation
from aiops.types import ActionContext, IncidentView, Outcome, Plan


class MarkerParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field("fixed", description="what the marker says")


class WriteMarker(Remediation):
    """Writes a marker file per incident in the daemon's state directory (example third-party remediation)."""

    Params = MarkerParams
    params: MarkerParams

    def plan(self, incident: IncidentView) -> Plan:
        return Plan(
            action="example_marker",
            description=f"write a marker for incident {incident.id}",
            target=f"incident:{incident.id}",
        )

    def execute(self, plan: Plan, ctx: ActionContext) -> Outcome:
        marker = self._dir() / f"{ctx.idempotency_key}.json"
        ctx.save_handle({"marker": str(marker)})  # before the side effect: a restart can see whether it happened
        if not marker.exists():  # idempotent: a second run under the same key changes nothing
            marker.write_text(json.dumps({"incident": ctx.incident.id, "note": self.params.note}))
        return Outcome(ok=True, summary=f"marker written: {marker.name}")

    def resume(self, plan: Plan, ctx: ActionContext) -> Outcome | None:
        marker = Path(str((ctx.handle or {}).get("marker", "")))
        return Outcome(ok=True, summary="marker was written") if marker.is_file() else None

    def _dir(self) -> Path:
        # The daemon hands its state directory over in the plugin context; outside it, the working directory.
        base = self.context.state_dir if self.context is not None else Path(".")
        path = base / "example-markers"
        path.mkdir(parents=True, exist_ok=True)
        return path
