"""The scheduler's thread pool, noting when each job's run was due, so a run can tell how late it started.

Why: a check that runs at all may still run late (its run waited for a free worker, or for the GIL), and
neither the skipped-tick counter nor the run's duration shows that. APScheduler hands the due times to the
executor only, never to the job, so they are kept here, keyed by job id, written before the run is
submitted (so a run always finds its own). One entry per job is enough: jobs run with
``max_instances=1`` and ``coalesce``, so a job has at most one run in flight, due at the last time
APScheduler passes.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job


class TimedPool(ThreadPoolExecutor):  # type: ignore[misc]  # APScheduler 3 ships no type hints
    def __init__(self, max_workers: int) -> None:
        super().__init__(max_workers=max_workers)
        self._due: dict[str, float] = {}
        self._due_lock = threading.Lock()

    def _do_submit_job(self, job: Job, run_times: Sequence[datetime]) -> None:
        with self._due_lock:
            self._due[job.id] = run_times[-1].timestamp()
        super()._do_submit_job(job, run_times)

    def due(self, job_id: str) -> float | None:
        """When the run of ``job_id`` now starting was due (epoch seconds); None if never submitted here."""
        with self._due_lock:
            return self._due.get(job_id)
