"""Retrain with a champion/challenger gate: refit on the recent labelled window, promote only if it wins.

Why a gate: a retrain that "succeeds" is not a fix. The challenger is evaluated against the champion on
the same held-out slice of fresh labelled data with the configured metric; only a win by ``min_improvement``
moves the ``champion`` alias. Otherwise the outcome is a failure ("retrain did not help"), which sends the
incident down the escalation ladder (rollback, a person) and counts for the circuit breaker.

Crash safety: training is pure computation; the only side effects are registry writes, each idempotent
under the action's key (the version carries the key; the promotion is recorded in the registry's op log in
the same atomic replace that moves the alias). So ``resume`` after a SIGKILL simply runs the same steps
again: a committed version is found instead of added, a recorded promotion is returned instead of repeated.
"""

from __future__ import annotations

import importlib
import time
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aiops.compute import ExecutorParams, JobSpec, JobState, open_executor
from aiops.durations import Duration
from aiops.errors import RegistryError, RemediationError
from aiops.plugins import Remediation
from aiops.registry import ModelRegistry, open_registry
from aiops.types import ActionContext, IncidentView, Outcome, Plan
from aiops_remediations.serving import reload_serving


class DataParams(BaseModel):
    """Where the recent labelled window comes from: a CSV/Parquet file or a SQL table/query."""

    model_config = ConfigDict(extra="forbid")

    source: dict[str, Any] | None = Field(
        None, description="a source block, e.g. {type: table, path: ..., max_age: 7d}: its rows are the window"
    )
    path: str | None = Field(None, description="CSV or Parquet file (by suffix) of labelled rows")
    sql_url: str | None = Field(None, description="SQLAlchemy URL to read from (with `table` or `query`)")
    table: str | None = Field(None, description="table name (with sql_url)")
    query: str | None = Field(None, description="SELECT returning the labelled rows (with sql_url)")
    target: str = Field(description="label column")
    features: list[str] | None = Field(None, description="feature columns (default: all but target and time)")
    time_column: str | None = Field(None, description="row time (epoch seconds or ISO); enables `window`")
    window: Duration | None = Field(None, description="only rows newer than this, e.g. 7d (needs time_column)")
    last_rows: int | None = Field(None, ge=1, description="only the newest N rows")

    @model_validator(mode="after")
    def _one_source(self) -> DataParams:
        if sum(bool(x) for x in (self.source, self.path, self.sql_url)) != 1:
            raise ValueError("give exactly one of 'source', 'path' or 'sql_url'")
        if self.source is not None and not isinstance(self.source.get("type"), str):
            raise ValueError("'source' needs a 'type' (a source plugin, e.g. table)")
        if self.sql_url and bool(self.table) == bool(self.query):
            raise ValueError("with sql_url give exactly one of 'table' or 'query'")
        if self.window is not None and not self.time_column:
            raise ValueError("'window' needs 'time_column'")
        return self


class ReloadParams(BaseModel):
    """How the serving side learns that the champion moved (both optional, both may be given)."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, description="POSTed JSON {model, version, alias, key} after the alias moved")
    argv: list[str] | None = Field(None, description="command run after the alias moved; {model} {version}")
    timeout: Duration = Field(30.0, gt=0)


class RetrainParams(BaseModel):
    """Parameters of the retrain remediation."""

    model_config = ConfigDict(extra="forbid")

    registry: str = Field(description="registry URI: a directory (filesystem registry) or mlflow:<tracking-uri>")
    model: str = Field(description="registered model name")
    data: DataParams
    metric: str = Field("accuracy", description="a scikit-learn scorer name (accuracy, f1, roc_auc, r2, ...)")
    min_improvement: float = Field(0.01, description="challenger must beat the champion by at least this")
    holdout: float = Field(0.3, gt=0, lt=1, description="fraction of the window held out for the comparison")
    min_rows: int = Field(50, ge=2, description="fewer labelled rows than this: do not retrain")
    seed: int = 0
    trainer: str | None = Field(
        None, description="'module:function(X, y, champion) -> fitted model' instead of refitting a clone"
    )
    reload: ReloadParams | None = None
    target: str | None = Field(None, description="blast-radius target (default model:<model>)")
    executor: ExecutorParams = Field(
        default_factory=lambda: ExecutorParams.model_validate({}),
        description="where training runs: local (default), dask or ray; the gate and promotion stay in the daemon",
    )

    @field_validator("trainer")
    @classmethod
    def _trainer(cls, value: str | None) -> str | None:
        if value is not None and (":" not in value or not all(value.split(":", 1))):
            raise ValueError("expected 'module:function'")
        return value


class RetrainRemediation(Remediation):
    """Refit the champion on recent labelled data; promote the challenger only if it wins by a margin."""

    Params: ClassVar[type[BaseModel]] = RetrainParams
    params: RetrainParams

    @classmethod
    def test_params(cls) -> list[dict[str, Any]]:
        return [{"registry": "models", "model": "churn", "data": {"path": "labelled.csv", "target": "churned"}}]

    def plan(self, incident: IncidentView) -> Plan:
        p = self.params
        source = f"source {p.data.source['type']}" if p.data.source else p.data.path or f"sql:{p.data.table or 'query'}"
        return Plan(
            action="retrain",
            description=(
                f"retrain {p.model} on {source} (target {p.data.target}); promote if {p.metric} "
                f"improves by >= {p.min_improvement:g} on a {p.holdout:.0%} holdout"
            ),
            target=p.target or f"model:{p.model}",
            details={"registry": p.registry, "model": p.model, "metric": p.metric, "margin": p.min_improvement},
        )

    def execute(self, plan: Plan, ctx: ActionContext) -> Outcome:
        if ctx.handle is None:
            ctx.save_handle({"phase": "retrain", "model": self.params.model})
        try:
            return self._run(ctx)
        except (RemediationError, RegistryError) as exc:
            return Outcome(ok=False, summary=str(exc), recoverable=exc.recoverable)

    def resume(self, plan: Plan, ctx: ActionContext) -> Outcome | None:
        """Every step is idempotent under the key, so resuming is re-running (no step happens twice); a
        training job still running on a cluster is adopted through the handle, not submitted again."""
        return self.execute(plan, ctx)

    # ------------------------------------------------------------------ the work

    def registry(self) -> ModelRegistry:
        return (self.context.model_registry if self.context is not None else open_registry)(self.params.registry)

    def _run(self, ctx: ActionContext) -> Outcome:
        p = self.params
        key = ctx.idempotency_key
        reg = self.registry()
        done = reg.op_result(p.model, key)
        if done is not None:  # promoted before a crash: only the (idempotent) reload may be missing
            return self._promoted(reg, str(done.champion), key, reused=True)
        version = reg.find_by_key(p.model, key)
        if version is None:
            version = self._challenger(ctx)
        meta = reg.metadata(p.model, version)
        if not _wins(meta, p.min_improvement):
            return Outcome(
                ok=False,
                summary=(
                    f"retrain did not help: challenger {p.metric} {meta.get('challenger_score'):.4f} vs champion "
                    f"{meta.get('champion_score'):.4f} (needs +{p.min_improvement:g}); not promoted"
                ),
                details={"challenger_version": version, **_scores(meta)},
            )
        reg.promote(p.model, version, key=key, reason=_verdict(meta, p.metric))
        return self._promoted(reg, version, key, reused=False)

    def _promoted(self, reg: ModelRegistry, version: str, key: str, *, reused: bool) -> Outcome:
        p = self.params
        meta = reg.metadata(p.model, version)
        details = {"champion": version, "previous": reg.alias(p.model, "previous"), "reused": reused, **_scores(meta)}
        if p.reload is not None:
            problem = reload_serving(
                url=p.reload.url,
                argv=p.reload.argv,
                payload={"model": p.model, "version": version, "alias": "champion", "key": key},
                key=key,
                timeout=p.reload.timeout,
            )
            if problem is not None:
                said = f"promoted version {version} but {problem.reason}"
                return Outcome(ok=False, summary=said, details=details, recoverable=problem.retryable)
        return Outcome(
            ok=True, summary=f"{_verdict(meta, p.metric)}; {p.model}@champion -> version {version}", details=details
        )

    def _challenger(self, ctx: ActionContext) -> str:
        """Train and register the challenger where the executor says; returns its version.

        The job's handle goes into the ledger (inside this action's handle) before any waiting, so a daemon
        killed while a cluster trains adopts that job after its restart instead of training twice.
        """
        p = self.params
        spec = JobSpec(
            key=ctx.idempotency_key,
            function="aiops_remediations.retrain:train_job",
            payload={"params": p.model_dump(mode="json", exclude={"executor", "reload"}), "key": ctx.idempotency_key},
        )
        previous = (ctx.handle or {}).get("job")
        executor = open_executor(p.executor)
        try:
            status = executor.run(
                spec,
                deadline=ctx.deadline,
                now=ctx.now,
                handle=previous if isinstance(previous, dict) else None,
                save_handle=lambda job: ctx.save_handle({"phase": "retrain", "model": p.model, "job": dict(job)}),
            )
        finally:
            executor.close()
        if status.state is not JobState.SUCCEEDED or status.result is None:
            raise RemediationError(f"training job failed ({p.executor.type}): {status.error}", recoverable=True)
        return str(status.result["version"])

    def _train_and_register(self, reg: ModelRegistry, key: str) -> str:
        import numpy as np
        from sklearn.base import clone
        from sklearn.metrics import get_scorer

        p = self.params
        frame = self._load_window()
        if len(frame) < p.min_rows:
            raise RemediationError(f"only {len(frame)} labelled rows in the window (min_rows {p.min_rows})")
        features = p.data.features or [c for c in frame.columns if c not in (p.data.target, p.data.time_column)]
        if p.data.time_column:  # the most recent slice is the fairest judge of "now"
            frame = frame.sort_values(p.data.time_column)
            n_test = max(1, round(len(frame) * p.holdout))
            train, test = frame.iloc[:-n_test], frame.iloc[-n_test:]
        else:
            order = np.random.default_rng(p.seed).permutation(len(frame))
            n_test = max(1, round(len(frame) * p.holdout))
            test, train = frame.iloc[order[:n_test]], frame.iloc[order[n_test:]]
        x_train, y_train = train[features], train[p.data.target]
        x_test, y_test = test[features], test[p.data.target]
        champion_version = reg.alias(p.model, "champion")
        champion = reg.load(p.model, champion_version) if champion_version is not None else None
        if p.trainer:
            module, func = p.trainer.split(":", 1)
            challenger = getattr(importlib.import_module(module), func)(x_train, y_train, champion)
        elif champion is not None:
            challenger = clone(champion).fit(x_train, y_train)
        else:
            raise RemediationError(f"model {p.model} has no champion to clone and no trainer is configured")
        try:
            scorer = get_scorer(p.metric)
        except ValueError as exc:
            raise RemediationError(f"unknown metric {p.metric!r}", recoverable=False) from exc
        challenger_score = float(scorer(challenger, x_test, y_test))
        champion_score = float(scorer(champion, x_test, y_test)) if champion is not None else 0.0
        # no champion yet: nothing to beat, so the first trained version is promoted on its own (the
        # improvement is undefined, not infinite: JSON has no infinity and the summary has no score to compare)
        improvement = challenger_score - champion_score if champion is not None else None
        times = frame[p.data.time_column] if p.data.time_column else None
        metadata = {
            "parent": champion_version,
            "training_window": {
                "rows": len(train),
                "holdout_rows": len(test),
                "from": None if times is None else str(times.iloc[0]),
                "to": None if times is None else str(times.iloc[-1]),
                "source": p.data.path or p.data.table or (p.data.source or {}).get("type") or "query",
            },
            "features": list(features),
            "metrics": {p.metric: challenger_score},
            "metric": p.metric,
            "challenger_score": challenger_score,
            "champion_score": champion_score if champion is not None else None,
            "improvement": improvement,
            "decision": "promote" if improvement is None or improvement >= p.min_improvement else "reject",
            "trained_at": time.time(),
        }
        return reg.register(p.model, challenger, metadata, key=key)

    def _load_window(self) -> Any:
        import pandas as pd

        d = self.params.data
        try:
            if d.source is not None:
                frame = _collect_source(d.source)
            elif d.path:
                frame = pd.read_parquet(d.path) if d.path.endswith((".parquet", ".pq")) else pd.read_csv(d.path)
            else:
                import sqlalchemy as sa

                engine = sa.create_engine(str(d.sql_url))
                try:
                    with engine.connect() as conn:
                        if d.table:
                            frame = pd.read_sql_table(d.table, conn)
                        else:
                            frame = pd.read_sql_query(sa.text(str(d.query)), conn)
                finally:
                    engine.dispose()
        except (OSError, ValueError, ImportError) as exc:
            raise RemediationError(f"cannot read the labelled window: {exc}", recoverable=True) from exc
        except Exception as exc:  # SQLAlchemy and parquet errors have no common base worth importing here
            problem = f"cannot read the labelled window: {exc.__class__.__name__}"
            raise RemediationError(problem, recoverable=True) from exc
        missing = [
            c
            for c in [d.target, *(d.features or []), *([d.time_column] if d.time_column else [])]
            if c not in frame.columns
        ]
        if missing:
            raise RemediationError(f"labelled data lacks columns {missing}", recoverable=False)
        frame = frame.dropna(subset=[d.target])
        if d.time_column:
            col = frame[d.time_column]
            stamps = col if pd.api.types.is_numeric_dtype(col) else pd.to_datetime(col, utc=True).astype("int64") / 1e9
            if d.window is not None:
                frame = frame[stamps >= time.time() - d.window]
            frame = frame.assign(**{d.time_column: stamps.loc[frame.index]}).sort_values(d.time_column)
        if d.last_rows:
            frame = frame.tail(d.last_rows)
        return frame.reset_index(drop=True)


def _collect_source(block: dict[str, Any]) -> Any:
    """Read a bounded window through a source plugin (found by entry point, like the daemon finds it)."""
    import pandas as pd

    from aiops import plugins

    params = {k: v for k, v in block.items() if k != "type"}
    source = plugins.build(plugins.SOURCES, str(block["type"]), params)
    frame = source.collect(None, time.time())
    if not frame.rows:
        raise RemediationError(f"source {block['type']!r} returned no rows", recoverable=True)
    return pd.DataFrame(list(frame.rows))


def train_job(payload: dict[str, Any]) -> dict[str, Any]:
    """The training job, wherever it runs: fit and register the challenger under the action's key.

    Idempotent: a version already registered under the key (a job that finished before a crash, or a
    duplicate submission) is returned instead of training another. The decision to promote is not taken
    here: the daemon takes it from the version's scores.
    """
    remediation = RetrainRemediation(**payload["params"])
    key = str(payload["key"])
    reg = remediation.registry()
    version = reg.find_by_key(remediation.params.model, key)
    if version is None:
        version = remediation._train_and_register(reg, key)
    return {"version": version}


def _wins(meta: dict[str, Any], margin: float) -> bool:
    """The champion/challenger gate: the challenger beats the champion (or there is none) by ``margin``."""
    challenger = meta.get("challenger_score")
    if challenger is None:
        return False
    champion = meta.get("champion_score")
    return champion is None or float(challenger) - float(champion) >= margin


def _verdict(meta: dict[str, Any], metric: str) -> str:
    """Why the version was promoted, in words: beat the champion, or was the first one."""
    if meta.get("champion_score") is None:
        return f"first version, no champion to beat ({metric} {meta.get('challenger_score'):.4f})"
    return f"challenger won ({metric} {meta.get('challenger_score'):.4f} vs {meta.get('champion_score'):.4f})"


def _scores(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: meta.get(k) for k in ("metric", "challenger_score", "champion_score", "improvement", "parent")}
