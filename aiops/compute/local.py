"""Jobs in the daemon's own process: what small teams run, and the default."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiops.compute.base import ComputeExecutor, JobSpec, JobState, JobStatus, run_job


class LocalExecutor(ComputeExecutor):
    """Runs the job inline at submit time. After a restart there is nothing to adopt: the job runs again,
    which is why job functions must be idempotent under their key (the retrain job finds the version it
    registered before the crash instead of training another)."""

    kind = "local"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._done: dict[str, JobStatus] = {}

    def submit(self, spec: JobSpec) -> dict[str, Any]:
        """Runs the job now; its :class:`~aiops.errors.AiopsError` propagates with its ``recoverable`` flag,
        since caller and job share the process."""
        self._done[spec.key] = JobStatus(JobState.SUCCEEDED, result=run_job(spec.function, spec.payload))
        return {"executor": self.kind, "key": spec.key}

    def poll(self, handle: Mapping[str, Any], spec: JobSpec) -> JobStatus:
        return self._done.get(str(handle.get("key")), JobStatus(JobState.LOST))

    def release(self, handle: Mapping[str, Any]) -> None:
        self._done.pop(str(handle.get("key")), None)
