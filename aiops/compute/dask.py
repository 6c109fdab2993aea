"""Jobs on a Dask ``distributed`` cluster.

The task's key is the job's key, and the future is published on the scheduler as a dataset of the same
name: a published future outlives the client that made it, so a restarted daemon (a new client) finds the
running or finished job by its key instead of submitting a second one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from aiops.compute.base import ComputeExecutor, JobSpec, JobState, JobStatus, run_job


class DaskExecutor(ComputeExecutor):
    kind = "dask"

    def _open_client(self) -> Any:
        with self._opening("aiops[dask]", "distributed", "dask scheduler", OSError):
            from distributed import Client  # type: ignore[attr-defined,unused-ignore]

            return Client(  # type: ignore[no-untyped-call,unused-ignore]
                self.params.address, timeout=self.params.connect_timeout, set_as_default=False
            )

    def _published(self, key: str) -> Any:
        try:
            return self._connect().get_dataset(key)
        except KeyError:
            return None

    def submit(self, spec: JobSpec) -> dict[str, Any]:
        client = self._connect()
        if self._published(spec.key) is None:
            future = client.submit(run_job, spec.function, dict(spec.payload), key=spec.key, pure=False)
            # another submitter (a replica, a previous life) may have published it first: keep theirs
            with contextlib.suppress(KeyError):
                client.publish_dataset(future, name=spec.key)
        return {"executor": self.kind, "address": self.params.address, "key": spec.key}

    def poll(self, handle: Mapping[str, Any], spec: JobSpec) -> JobStatus:
        future = self._published(str(handle["key"]))
        if future is None:
            return JobStatus(JobState.LOST, error="the scheduler holds no job under this key")
        if future.status == "finished":
            return JobStatus(JobState.SUCCEEDED, result=future.result())
        if future.status in ("error", "cancelled", "lost"):
            exc = future.exception() if future.status == "error" else None
            return JobStatus(JobState.FAILED, error=f"dask job {future.status}: {exc!r}" if exc else future.status)
        return JobStatus(JobState.RUNNING)

    def release(self, handle: Mapping[str, Any]) -> None:
        with contextlib.suppress(KeyError):
            self._connect().unpublish_dataset(str(handle["key"]))
