"""The executor contract, its configuration block and the job runner every executor calls."""

from __future__ import annotations

import contextlib
import enum
import importlib
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from aiops.durations import Duration
from aiops.errors import RemediationError


class ExecutorParams(BaseModel):
    """Where a heavy job runs: ``{type: local}`` (default), ``{type: dask, address: tcp://host:8786}``,
    ``{type: ray, address: http://host:8265}`` or ``{type: kubernetes, image: ...}`` (a Job through kubectl)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["local", "dask", "ray", "kubernetes"] = "local"
    address: str | None = Field(None, description="dask: scheduler address; ray: job-submission (dashboard) URL")
    python: str = Field(
        "python3", description="ray, kubernetes: interpreter on the cluster that runs `-m aiops.compute.job`"
    )
    image: str | None = Field(None, description="kubernetes: the image of the Job's container (aiops installed)")
    namespace: str = Field("default", description="kubernetes: namespace of the Job")
    service_account: str | None = Field(None, description="kubernetes: service account the Job runs as")
    kubectl: list[str] = Field(["kubectl"], min_length=1, description="kubernetes: kubectl argv prefix (context...)")
    poll_interval: Duration = Field(1.0, description="how often a running job is polled")
    connect_timeout: Duration = Field(10.0, description="how long to wait for the scheduler / job server")


class JobState(enum.Enum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    LOST = "lost"  # the engine has no record of the job (its scheduler restarted): submit it again


@dataclass(frozen=True)
class JobSpec:
    """One job: the same ``key`` is the same job, wherever and however often it is submitted."""

    key: str
    function: str  # module:function(payload) -> JSON-safe dict
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobStatus:
    state: JobState
    result: Mapping[str, Any] | None = None
    error: str | None = None


class ComputeExecutor(ABC):
    """Submits jobs and reports on them; handles are JSON-safe so they can live in the action ledger."""

    kind: ClassVar[str]

    def __init__(self, params: ExecutorParams) -> None:
        self.params = params
        self._client: Any = None

    def _connect(self) -> Any:
        """The engine's client, opened on first use (remote engines' libraries load only then)."""
        if self._client is None:
            self._client = self._open_client()
        return self._client

    def _open_client(self) -> Any:
        """Connect to the engine; raise :class:`RemediationError` saying whether a retry can help."""
        return None

    @contextlib.contextmanager
    def _opening(self, extra: str, library: str, server: str, *unreachable: type[Exception]) -> Iterator[None]:
        """Guard for :meth:`_open_client`: the engine's library missing is final (only an install helps), the
        ``unreachable`` errors of reaching ``server`` are worth a retry (it may be restarting)."""
        try:
            yield
        except ImportError as exc:
            raise RemediationError(f"executor {self.kind} needs '{extra}' ({library})", recoverable=False) from exc
        except unreachable as exc:
            raise RemediationError(f"{server} {self.params.address}: {exc}", recoverable=True) from exc

    @abstractmethod
    def submit(self, spec: JobSpec) -> dict[str, Any]:
        """Start the job unless a job with this key exists already; returns its handle."""

    @abstractmethod
    def poll(self, handle: Mapping[str, Any], spec: JobSpec) -> JobStatus:
        """Where the job stands; never blocks for long."""

    def release(self, handle: Mapping[str, Any]) -> None:  # noqa: B027 - optional hook, nothing to free by default
        """Forget the job's stored result once the caller has consumed it."""

    def close(self) -> None:
        """Drop the engine's client, if one was opened."""
        client, self._client = self._client, None
        if client is not None and callable(getattr(client, "close", None)):
            client.close()

    def run(
        self,
        spec: JobSpec,
        *,
        deadline: float,
        save_handle: Callable[[Mapping[str, Any]], None],
        handle: Mapping[str, Any] | None = None,
        now: Callable[[], float] = time.time,
    ) -> JobStatus:
        """Submit (or adopt ``handle``), record the handle, and wait until the job ends or ``deadline``.

        ``save_handle`` is called with the handle before any waiting, so a crash while the job runs leaves
        the ledger pointing at it. A job the engine lost is submitted again once (same key: no duplicate).
        """
        resubmitted = False
        if handle is None or handle.get("executor") != self.kind:
            handle = self.submit(spec)
            save_handle(handle)
        while True:
            status = self.poll(handle, spec)
            if status.state is JobState.LOST and not resubmitted:
                resubmitted = True
                handle = self.submit(spec)
                save_handle(handle)
                continue
            if status.state is not JobState.RUNNING:
                if status.state is JobState.SUCCEEDED:
                    self.release(handle)
                return status
            if now() >= deadline:
                return JobStatus(JobState.FAILED, error=f"{self.kind} job {spec.key} still running at the deadline")
            time.sleep(self.params.poll_interval)


def run_job(function: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Call ``module:function(payload)`` and return its result as plain JSON data (what every executor ships)."""
    module, _, name = function.partition(":")
    if not module or not name:
        raise ValueError(f"job function {function!r}: expected 'module:function'")
    result = getattr(importlib.import_module(module), name)(dict(payload))
    return dict(json.loads(json.dumps(result)))


def open_executor(params: ExecutorParams) -> ComputeExecutor:
    """The executor for a config block; remote engines' client libraries are imported only here."""
    if params.type == "local":
        from aiops.compute.local import LocalExecutor

        return LocalExecutor(params)
    if params.type == "kubernetes":
        from aiops.compute.kubernetes import KubernetesExecutor

        if params.image is None:
            raise RemediationError("executor kubernetes needs an 'image'", recoverable=False)
        return KubernetesExecutor(params)
    if params.address is None:
        raise RemediationError(f"executor {params.type} needs an 'address'", recoverable=False)
    if params.type == "dask":
        from aiops.compute.dask import DaskExecutor

        return DaskExecutor(params)
    from aiops.compute.ray import RayExecutor

    return RayExecutor(params)
