"""The executor contract on the in-process executor (the real Dask and Ray runs are in tests/e2e)."""

from __future__ import annotations

from typing import Any

import pytest

from aiops.compute import ExecutorParams, JobSpec, JobState, open_executor
from aiops.compute.base import run_job
from aiops.compute.ray import submission_id
from aiops.errors import RemediationError

CALLS: list[dict[str, Any]] = []


def record(payload: dict[str, Any]) -> dict[str, Any]:
    CALLS.append(payload)
    return {"doubled": payload["n"] * 2}


def test_local_job_runs_and_its_handle_is_saved_before_the_result_is_read() -> None:
    CALLS.clear()
    saved: list[dict[str, Any]] = []
    spec = JobSpec(key="k1", function=f"{__name__}:record", payload={"n": 21})
    status = open_executor(ExecutorParams()).run(spec, deadline=1e18, save_handle=lambda h: saved.append(dict(h)))
    assert status.state is JobState.SUCCEEDED and status.result == {"doubled": 42}
    assert saved == [{"executor": "local", "key": "k1"}]
    assert len(CALLS) == 1


def test_a_handle_whose_job_is_gone_is_submitted_again_once() -> None:
    CALLS.clear()
    saved: list[dict[str, Any]] = []
    spec = JobSpec(key="k2", function=f"{__name__}:record", payload={"n": 1})
    status = open_executor(ExecutorParams()).run(
        spec, deadline=1e18, save_handle=lambda h: saved.append(dict(h)), handle={"executor": "local", "key": "k2"}
    )
    assert status.state is JobState.SUCCEEDED and len(CALLS) == 1 and len(saved) == 1


def test_results_are_plain_json_and_function_names_are_checked() -> None:
    assert run_job(f"{__name__}:record", {"n": 2}) == {"doubled": 4}
    with pytest.raises(ValueError, match="module:function"):
        run_job("no_colon", {})


def test_remote_executors_need_an_address() -> None:
    with pytest.raises(RemediationError, match="address"):
        open_executor(ExecutorParams(type="dask"))


def test_ray_submission_ids_are_stable_safe_and_distinct() -> None:
    a, b = submission_id("incident-1/rung 0"), submission_id("incident-1/rung-0")
    assert a == submission_id("incident-1/rung 0")
    assert a != b
    assert all(c.isalnum() or c in "-_" for c in a)
