"""Jobs on a Ray cluster, through Ray's job-submission API.

The submission id is derived from the job's key, and Ray refuses a second submission with the same id, so
a restarted daemon that submits again simply finds the job it started before. The entrypoint is a fixed
command (``PYTHON -m aiops.compute.job``); the function and payload travel as environment variables of the
job's runtime environment, never interpolated into the command line that Ray runs through a shell. The
result comes back as the last ``AIOPS_JOB_RESULT`` line of the job's log, so nothing but Ray's own API
needs to be shared between the daemon and the cluster.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Mapping
from typing import Any

from aiops.compute.base import ComputeExecutor, JobSpec, JobState, JobStatus
from aiops.compute.job import FUNCTION_VAR, PAYLOAD_VAR, result_from_log
from aiops.errors import RemediationError

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def submission_id(key: str) -> str:
    """A Ray-safe, stable id for a key: readable prefix + hash, so distinct keys never collide."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"aiops-{_UNSAFE.sub('-', key)[:60]}-{digest}"


class RayExecutor(ComputeExecutor):
    kind = "ray"

    def _open_client(self) -> Any:
        with self._opening("aiops[ray]", "ray[default]", "ray job server", ConnectionError, RuntimeError, OSError):
            from ray.job_submission import JobSubmissionClient

            return JobSubmissionClient(self.params.address)

    def submit(self, spec: JobSpec) -> dict[str, Any]:
        client = self._connect()
        job_id = submission_id(spec.key)
        try:
            client.submit_job(
                entrypoint=f"{shlex.quote(self.params.python)} -m aiops.compute.job",
                submission_id=job_id,
                runtime_env={"env_vars": {FUNCTION_VAR: spec.function, PAYLOAD_VAR: json.dumps(dict(spec.payload))}},
            )
        except RuntimeError as exc:
            if "already exists" not in str(exc):  # the same key submitted before: that job is this job
                raise RemediationError(f"ray job submission failed: {exc}", recoverable=True) from exc
        return {"executor": self.kind, "address": self.params.address, "submission_id": job_id}

    def poll(self, handle: Mapping[str, Any], spec: JobSpec) -> JobStatus:
        client = self._connect()
        job_id = str(handle["submission_id"])
        try:
            status = str(client.get_job_status(job_id))
        except RuntimeError:
            return JobStatus(JobState.LOST, error="the cluster has no job with this submission id")
        status = status.rsplit(".", 1)[-1].upper()
        if status == "SUCCEEDED":
            result = result_from_log(client.get_job_logs(job_id))
            if result is None:
                return JobStatus(JobState.FAILED, error="ray job succeeded but printed no result")
            return JobStatus(JobState.SUCCEEDED, result=result)
        if status in ("FAILED", "STOPPED"):
            tail = " | ".join(client.get_job_logs(job_id).strip().splitlines()[-3:])
            return JobStatus(JobState.FAILED, error=f"ray job {status.lower()}: {tail}")
        return JobStatus(JobState.RUNNING)
