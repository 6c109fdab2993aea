"""Heavy jobs (a retrain on a large window, a backtest) handed to an engine built for them.

The daemon decides and records; it does not have to compute. A job is a plain function named
``module:function`` that takes a JSON-safe payload and returns a JSON-safe result, submitted under an
idempotency key to an executor: ``local`` (in the daemon's process, as before), ``dask`` (a
``distributed`` scheduler) or ``ray`` (Ray's job-submission API). The caller stores the handle that
:meth:`ComputeExecutor.submit` returns in the action ledger before waiting, so a daemon that dies while the
job runs finds it again after its restart and adopts its result instead of running it twice: both remote
executors deduplicate by the key (Dask's task key and published dataset, Ray's submission id).
"""

from aiops.compute.base import ComputeExecutor, ExecutorParams, JobSpec, JobState, JobStatus, open_executor

__all__ = ["ComputeExecutor", "ExecutorParams", "JobSpec", "JobState", "JobStatus", "open_executor"]
