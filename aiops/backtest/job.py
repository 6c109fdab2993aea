"""A backtest as a compute job (``aiops backtest --executor``): the worker reads the history itself and
ships back the result as JSON, so a month of a hundred checks can run on a Dask or Ray cluster."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aiops.backtest.records import BacktestResult, result_from_dict
from aiops.compute import ExecutorParams, JobSpec, JobState, open_executor
from aiops.config.loader import parse_config
from aiops.errors import AiopsError

FUNCTION = "aiops.backtest.job:run"


def run(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The job: parse the shipped config, replay, return the result as plain data."""
    from aiops.backtest.simulate import simulate

    config = parse_config(str(payload["config_text"]), str(payload["config_name"]))
    checks = list(payload.get("checks") or []) or None
    result = simulate(
        config, float(payload["since"]), float(payload["until"]), checks=checks, action_ok=bool(payload["action_ok"])
    )
    return result.to_dict()


def parse_executor(text: str) -> ExecutorParams:
    """``local``, ``dask=tcp://host:8786`` or ``ray=http://host:8265``."""
    kind, _, address = text.partition("=")
    if kind not in ("local", "dask", "ray"):
        raise AiopsError(f"--executor {text!r}: expected local, dask=ADDRESS or ray=ADDRESS")
    return ExecutorParams.model_validate({"type": kind, "address": address or None})


def run_on(
    params: ExecutorParams,
    config_path: str,
    since: float,
    until: float,
    checks: Sequence[str],
    *,
    action_ok: bool,
    timeout: float = 3600.0,
) -> BacktestResult:
    import hashlib
    import time

    try:
        with open(config_path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise AiopsError(f"{config_path}: cannot read: {exc}") from None
    payload = {
        "config_text": text,
        "config_name": config_path,
        "since": since,
        "until": until,
        "checks": list(checks),
        "action_ok": action_ok,
    }
    key = "backtest-" + hashlib.sha256(repr(sorted(payload.items())).encode()).hexdigest()[:24]
    executor = open_executor(params)
    try:
        status = executor.run(
            JobSpec(key=key, function=FUNCTION, payload=payload),
            deadline=time.time() + timeout,
            save_handle=lambda _h: None,
        )
    finally:
        executor.close()
    if status.state is not JobState.SUCCEEDED or status.result is None:
        raise AiopsError(f"backtest job on {params.type} failed: {status.error or status.state.value}")
    return result_from_dict(dict(status.result))
