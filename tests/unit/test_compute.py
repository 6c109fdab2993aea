"""The executor contract on the in-process executor (the real Dask and Ray runs are in tests/e2e)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

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


def test_kubernetes_job_manifest_is_valid_hardened_and_carries_no_shell(tmp_path: Path) -> None:
    from aiops.compute.kubernetes import job_manifest, job_name

    spec = JobSpec(key="incident-7:rung-0:Retrain/churn", function="aiops_remediations.retrain:train_job",
                   payload={"key": "k", "params": {"model": "churn; rm -rf /"}})
    params = ExecutorParams(type="kubernetes", image="registry.local/aiops:1.0", namespace="ml",
                            service_account="trainer")
    manifest = job_manifest(spec, params)
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(manifest))
    tool = shutil.which("kubernetes-validate", path=str(Path(sys.executable).parent)) or "kubernetes-validate"
    out = subprocess.run([tool, "--strict", str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    name = manifest["metadata"]["name"]
    assert name == job_name(spec.key) and len(name) <= 63 and name == name.lower()
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python3", "-m", "aiops.compute.job"], "a fixed command: no shell, no payload"
    assert json.loads(container["env"][1]["value"])["params"]["model"] == "churn; rm -rf /"
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert manifest["spec"]["backoffLimit"] == 0


def test_kubernetes_executor_needs_an_image() -> None:
    with pytest.raises(RemediationError, match="image"):
        open_executor(ExecutorParams(type="kubernetes"))
