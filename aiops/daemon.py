"""The daemon: wires config, store, scheduler, engine, HTTP and signals together, and owns the lifecycle.

Start: load config (the same loader as ``check-config``), migrate the store, build every plugin, reconcile
actions left by a dead process, then schedule the checks whose lease this replica holds (one APScheduler job per
phase slot of an interval, or per cron check, whose runs go to a bounded pool of check workers:
aiops/engine/slots.py; lease rounds add and remove them) plus the executor, outbox, sweeper and lease jobs.
SIGHUP or ``POST /-/reload`` builds a complete new runtime and swaps it in only if it is valid. SIGTERM/SIGINT
stop scheduling, give running actions a grace period, release the leases of the rest and exit 0 within 10 s.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import structlog
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.executors.pool import ThreadPoolExecutor as SchedulerPool
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import CollectorRegistry

from aiops.clock import Clock, SystemClock
from aiops.cluster.leases import Leases
from aiops.cluster.membership import STALE_AFTER, Membership
from aiops.cluster.metrics import ClusterCollector, LeaseMetrics
from aiops.config.loader import Config, api_token, load_config, ui_read_token
from aiops.config.models import CheckConfig
from aiops.engine.capacity import (
    REPLICA_CHECK,
    CapacitySkips,
    Overloaded,
    Recovered,
    every_receiver,
    overloaded_finding,
    replica_config,
    replica_fingerprint,
)
from aiops.engine.checks import CheckRunner, scheduler_problem
from aiops.engine.executor import ActionExecutor
from aiops.engine.incidents import IncidentManager, incident_dict
from aiops.engine.outbox import OutboxDispatcher
from aiops.engine.phases import PhasedInterval
from aiops.engine.runtime import CheckRuntime, Runtime, build_runtime
from aiops.engine.skipped_runs import (
    CHECK_JOB_PREFIXES,
    HOUSEKEEPING_PREFIX,
    JobSkips,
    SkippedRuns,
    quiet_scheduler_lines,
)
from aiops.engine.slots import CheckSlots, Slot, grace_of
from aiops.engine.tick_pool import TimedPool
from aiops.errors import AiopsError, ConfigError, LeaseLost
from aiops.feedback import Feedback, FeedbackFacade
from aiops.feedback_metrics import FeedbackCollector
from aiops.logs import add_secrets
from aiops.long_lived_objects import freeze_start_up_objects, refreeze_after_reload, thaw
from aiops.plugins import PluginContext
from aiops.sdnotify import notify
from aiops.series_history import RecordingSource, SeriesHistory
from aiops.server import ApiServer
from aiops.store.records import PushedEvent
from aiops.store.store import Store, default_owner
from aiops.telemetry import Telemetry
from aiops.types import Finding

log = structlog.get_logger("aiops.daemon")

PAUSED_FLAG = "paused"
SHUTDOWN_GRACE = 6.0
CHECKPOINT_GRACE = 3.0  # the final checkpoint's share of the 10 s a SIGTERM allows; the rest is re-read
STORE_CONNECTIONS_SPARE = 4  # pooled store connections beyond the workers': the lease round and API requests
HOUSEKEEPING_JOBS = 5  # executor, outbox, sweeper, membership, capacity: the scheduler jobs that use the store
LEASE_EXECUTOR = "leases"
GIL_SWITCH_INTERVAL = 0.001  # seconds; see Daemon.start
EVENT_RETENTION = 7 * 86400.0  # pushed points/events (POST /api/v1/ingest, /alertmanager) are kept this long


class Daemon(FeedbackFacade):
    """One running aiops. Also the HTTP API's backend (see :class:`aiops.http.backend.ApiBackend`; verdicts and
    effectiveness come from :class:`~aiops.feedback.FeedbackFacade`)."""

    def __init__(
        self,
        config: Config,
        *,
        listen: str | None = None,
        clock: Clock | None = None,
        registry: CollectorRegistry | None = None,
        notify_socket: str | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self._http = requests.Session()  # one connection pool for every plugin of this daemon
        self.listen = listen or config.settings.server.listen
        self.registry = registry or CollectorRegistry()
        self.owner = default_owner()
        # check workers: checks share them, so 1 000 checks do not mean 1 000 threads (read at start)
        self.workers = config.settings.workers
        # a connection for each check worker and housekeeping job, the lease round's thread and a few API requests
        self.store = Store(
            _store_url(config),
            connections=self.workers + HOUSEKEEPING_JOBS + STORE_CONNECTIONS_SPARE,
            background_wal_checkpoints=True,
        )
        self.store.migrate()
        self.membership = Membership.join(self.store, self.owner, self.listen)  # SQLite: refuses a second daemon
        # which checks this replica runs (all of them on SQLite, where it is the only replica)
        self.leases = Leases(
            self.store,
            self.owner,
            config.settings.cluster.lease,
            beat=self.membership.beat,
            live=self.membership.live,
        )
        self._runtime = build_runtime(config, self._plugin_context(config))
        self._runtime_lock = threading.Lock()
        self._paused = self.store.get_flag(PAUSED_FLAG, "0") == "1"
        self._paused_checked = time.monotonic()
        self.telemetry = Telemetry(self.registry, incident_counts=self.store.incident_counts)
        self.telemetry.set_outbox_pending_callback(lambda: float(self.store.outbox_pending()))
        self.telemetry.config_reloaded(True)
        self.notify_socket = notify_socket  # systemd's NOTIFY_SOCKET, handed over by the command line
        self.telemetry.set_paused(self._paused)
        # operators' verdicts and remediation effectiveness: API (FeedbackBackend) and metrics, from the store
        self.feedback = Feedback(self.store, self.clock.now, lambda: self.runtime().checks.keys())
        self.registry.register(FeedbackCollector(self.store, self.clock.now))
        self.registry.register(ClusterCollector(self.store))  # aiops_cluster_members, from the members table
        self.lease_metrics = LeaseMetrics(self.registry, lambda: len(self.leases.owned()))
        self._fenced_out: set[tuple[str, int]] = set()  # (check, token) already logged as taken over
        self.incidents = IncidentManager(self.store, self.runtime, self.clock.now, paused=self.paused)
        self.executor = ActionExecutor(
            self.store,
            self.incidents,
            self.runtime,
            self.clock.now,
            self.owner,
            on_done=lambda action, outcome, seconds: self.telemetry.action(action, outcome, seconds),
            fence_for=self.leases.fence,
        )
        self.outbox = OutboxDispatcher(
            self.store,
            self.runtime,
            self.clock.now,
            on_result=self.telemetry.notification,
            owner=self.owner,
            alive=lambda replica: replica in self.membership.live(STALE_AFTER),
        )
        self._runners: dict[str, CheckRunner] = {}
        self._ticks: dict[str, CheckTick] = {}  # the last tick of each check, for the console's checks page
        self.history = SeriesHistory()  # recent points of each collected series, for the console's plots
        self.skipped = SkippedRuns()  # skipped runs per check, reported by its next run
        self.job_skips = JobSkips()  # skipped runs of the daemon's own jobs, summarised
        self._froze = False  # whether start froze the long-lived objects (reload and shutdown then undo it)
        self.capacity = CapacitySkips()  # runs skipped for want of a worker: this replica's own incident
        self._stop = threading.Event()
        self._scheduler: BackgroundScheduler | None = None
        self._pool: TimedPool | None = None  # the scheduler's workers; they know when each run was due
        self._slots: CheckSlots | None = None  # the check workers, and the checks of each phase slot
        self._server: ApiServer | None = None
        self._config_path = config.path

    # -- runtime ---------------------------------------------------------------------------------------

    def runtime(self) -> Runtime:
        return self._runtime

    @staticmethod
    def _stop_plugins(runtime: Runtime, runners: list[CheckRunner]) -> None:
        """Stop a runtime's plugins, and the fresh ones its check runners built after an abandoned run."""
        runtime.stop()
        for runner in runners:
            runner.runtime.stop()

    def _plugin_context(self, config: Config) -> PluginContext:
        """What plugins are started with: the state directory (files that outlive a restart, such as the
        status files of running commands), the clock, the store's pushed telemetry (what the HTTP API
        ingested, read by the push and alertmanager sources) and the shared HTTP session."""
        return PluginContext(
            state_dir=Path(config.settings.state_dir).resolve(),
            clock=self.clock.now,
            log=structlog.get_logger("aiops.plugin"),
            http=self._http,
            events=self.store,
        )

    def paused(self) -> bool:
        """The kill switch lives in the store, so ``aiops pause`` works from any shell, even on a wedged
        daemon; it is re-read at most once a second."""
        now = time.monotonic()
        if now - self._paused_checked >= 1.0:
            self._paused_checked = now
            try:
                paused = self.store.get_flag(PAUSED_FLAG, "0") == "1"
            except AiopsError:
                paused = True  # store unreachable: act as paused rather than act blind
            if paused != self._paused:
                log.warning("kill switch " + ("on" if paused else "off"))
                self.telemetry.set_paused(paused)
            self._paused = paused
        return self._paused

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        # A tick over thousands of series is long stretches of Python holding the GIL; every time a request
        # thread comes back from a socket or SQLite call it waits for the holder to let go, up to the switch
        # interval each time (5 ms by default, dozens of times per ingest request). 1 ms cut ingest p99 under
        # a 10 000-series tick about threefold (benchmarks/RESULTS.md); the tick pays a few more switches.
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        self.executor.tick()  # reconcile actions left running by a dead process before anything new
        self._lease_tick()  # claim this replica's share of the checks before their first ticks
        self.incidents.reconcile(self.leases.fence)  # incidents whose last decision an older release's crash split
        housekeeping = (
            ("executor", self._logged("executor tick failed", self.executor.tick)),
            ("outbox", self._logged("outbox tick failed", self.outbox.tick)),
            ("sweeper", self._logged("sweep failed", lambda: self.incidents.sweep(self.leases.fence))),
            ("membership", self.membership.tick),
            ("capacity", self._logged("capacity report failed", self._capacity_tick)),
        )
        # the scheduler's own threads: one per housekeeping job and two for the quick jobs that hand check runs
        # to the check workers
        self._pool = TimedPool(max_workers=len(housekeeping) + 2)
        self._slots = CheckSlots(
            self._check_tick,
            skipped=self._count_skipped,
            lateness=self.telemetry.check_lateness,
            workers=self.workers,  # threads start as runs need them
        )
        scheduler = BackgroundScheduler(
            executors={
                "default": self._pool,
                # the lease round on a thread of its own: checks that keep every worker busy must not make
                # this replica miss its renewals and lose its checks
                LEASE_EXECUTOR: SchedulerPool(max_workers=1),
            },
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
            timezone="UTC",
        )
        scheduler.add_listener(self._on_skipped, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        quiet_scheduler_lines()  # _on_skipped counts and reports each skipped run; no line per run
        self._scheduler = scheduler
        for job_id, fn in housekeeping:
            scheduler.add_job(fn, IntervalTrigger(seconds=1), id=f"{HOUSEKEEPING_PREFIX}{job_id}", name=job_id)
        scheduler.add_job(
            self._lease_tick,
            IntervalTrigger(seconds=0.25),
            id=f"{HOUSEKEEPING_PREFIX}leases",
            name="leases",
            executor=LEASE_EXECUTOR,
        )
        self._schedule_checks(self._runtime)
        scheduler.start()
        self.telemetry.set_scheduler_running(True)
        token = _token(self.config)
        if token:
            add_secrets([token])
        self._server = ApiServer(self, self.registry, self.listen, token, ui_read_token(self.config.settings))
        self._server.start()  # returns once the listener accepts connections
        notify("READY=1", self.notify_socket)  # Type=notify units wait for this: scheduling and the API are both up now
        self._freeze_long_lived()
        host, port = self._server.address
        log.info(
            "aiops started",
            listen=f"{host}:{port}",
            console=f"{self._server.url}/ui/",
            checks=len(self._runtime.checks),
            store=self.store.redacted_url,
            paused=self._paused,
            config=self._config_path,
        )

    def _schedule_checks(self, runtime: Runtime) -> None:
        assert self._scheduler is not None and self._slots is not None
        self._slots.clear()
        for job in self._scheduler.get_jobs():
            if job.id.startswith(CHECK_JOB_PREFIXES):
                job.remove()
        self._flush_checkpoints(deadline=None)  # the new runners restore from what the old ones saved
        every = self.config.settings.state.checkpoint
        self._runners = {
            name: CheckRunner(self._recorded(name, cr), self.store, checkpoint_every=every)
            for name, cr in runtime.checks.items()
        }
        self.history.forget_except(set(runtime.checks))
        owned = set(self.leases.owned())
        for name, cr in runtime.checks.items():
            if name in owned:
                self._schedule_check(name, cr.config)

    def _schedule_check(self, name: str, cfg: CheckConfig) -> None:
        """Schedule the ticks of a check this replica holds the lease of; the first one runs at once, the next
        ones at the check's phase in its interval (:mod:`aiops.engine.phases`), fired with the other checks of
        that phase slot by one scheduler job (:mod:`aiops.engine.slots`).

        Only held checks are scheduled (a lease round adds and removes them as checks come and go), so a
        replica's scheduler carries its share of the checks, not all of them: with N replicas each replica
        runs checks/N runs per interval, which is what lets replicas add throughput."""
        assert self._scheduler is not None and self._slots is not None
        if cfg.every is not None:
            slot = self._slots.add(name, cfg.every)
            if slot is not None:  # the first check of its slot: the slot's job
                self._scheduler.add_job(
                    self._fire_slot,
                    PhasedInterval(slot.every, slot.phase),
                    args=[slot],
                    id=slot.job_id,
                    name=slot.job_id,
                    misfire_grace_time=grace_of(slot.every),
                    replace_existing=True,
                )
        else:
            assert cfg.cron is not None
            self._scheduler.add_job(
                self._dispatch_cron,
                CronTrigger.from_crontab(cfg.cron, timezone="UTC"),
                args=[name],
                id=f"check:{name}",
                name=name,
                # a run that cannot start within its grace is skipped (and counted), not run late
                misfire_grace_time=grace_of(None),
                replace_existing=True,
            )
        self._slots.submit(name, time.time(), grace_of(cfg.every))  # the first run: at once

    def _fire_slot(self, slot: Slot) -> None:
        assert self._pool is not None and self._slots is not None
        self._slots.fire(slot, self._pool.due(slot.job_id) or time.time())

    def _dispatch_cron(self, name: str) -> None:
        assert self._pool is not None and self._slots is not None
        self._slots.submit(name, self._pool.due(f"check:{name}") or time.time(), grace_of(None))

    def _unschedule_check(self, name: str) -> None:
        assert self._scheduler is not None and self._slots is not None
        emptied = self._slots.remove(name)
        for job_id in (f"check:{name}", *([emptied.job_id] if emptied is not None else [])):
            job = self._scheduler.get_job(job_id)
            if job is not None:
                job.remove()

    def serve_forever(self) -> int:
        """Run until SIGTERM/SIGINT; SIGHUP reloads. Returns the exit code."""
        signal.signal(signal.SIGTERM, lambda *_: self._stop.set())
        signal.signal(signal.SIGINT, lambda *_: self._stop.set())
        signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=self.reload, daemon=True).start())
        self.start()
        while not self._stop.wait(0.5):
            pass
        self.shutdown()
        return 0

    def stop(self) -> None:
        self._stop.set()

    def shutdown(self) -> None:
        log.info("shutting down")
        notify("STOPPING=1", self.notify_socket)
        started = time.monotonic()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self.telemetry.set_scheduler_running(False)
        if self._slots is not None:
            self._slots.shutdown()
        self._flush_checkpoints(deadline=started + CHECKPOINT_GRACE)
        self.executor.shutdown(grace=SHUTDOWN_GRACE)
        try:
            self.outbox.tick()  # one last flush; anything unsent stays in the outbox for the next start
        except Exception as exc:
            log.warning("final outbox flush failed", error=str(exc))
        if self._server is not None:
            self._server.stop()
        try:
            self.leases.release_all()  # after the final checkpoints: the next owner starts from them
        except AiopsError as exc:
            log.warning("releasing the check leases failed; they expire by themselves", error=str(exc))
        self._stop_plugins(self._runtime, list(self._runners.values()))
        self._http.close()
        self.membership.leave()
        self.store.close()
        if self._froze:
            thaw()
            self._froze = False
        log.info("stopped", seconds=round(time.monotonic() - started, 2))

    def _flush_checkpoints(self, deadline: float | None) -> None:
        """Save every check's changed detector state with its cursor (until ``deadline``, monotonic)."""
        now = self.clock.now()
        for name, runner in self._runners.items():
            fence = self.leases.fence(name)
            if fence is None:
                continue  # another replica runs it (or nobody since this replica lost it): its state is theirs
            try:
                with self.store.fenced(fence):
                    flushed = runner.flush(now, time.monotonic() + 3600.0 if deadline is None else deadline)
                if not flushed:
                    log.info("final checkpoint incomplete; the next start re-reads from the last one", check=name)
            except AiopsError as exc:
                log.warning(
                    "final checkpoint failed; the next start re-reads from the last one", check=name, error=str(exc)
                )

    # -- jobs ------------------------------------------------------------------------------------------

    def _on_skipped(self, event: JobEvent) -> None:
        """The scheduler missed a check job or a slot job (too late to start it): a skipped run of each of its
        checks (the check workers report the runs they skip themselves, see aiops/engine/slots.py)."""
        assert self._slots is not None
        missed = len(getattr(event, "scheduled_run_times", None) or [None])
        if event.job_id.startswith(HOUSEKEEPING_PREFIX):
            job = event.job_id.removeprefix(HOUSEKEEPING_PREFIX)
            self.telemetry.housekeeping_runs_skipped(job, missed)
            self.job_skips.add(job, missed)
            return
        if event.job_id.startswith("check:"):
            names = [event.job_id.removeprefix("check:")]
        else:
            names = self._slots.checks_of(event.job_id)
        for name in names:
            self._count_skipped(name, missed)

    def _count_skipped(self, name: str, missed: int) -> None:
        """``missed`` scheduled runs of ``name`` did not happen (still running, or too late to start): count
        them, and let the check's next run raise ``check_overrun`` when the check itself overruns (see
        _overrun_problem)."""
        self.telemetry.check_ticks_skipped(name, missed)
        self.skipped.add(name, missed)
        if self._slots is not None and self._slots.waiting():
            self.capacity.add(name, missed)  # no worker was free: this replica is past its capacity

    def _overrun_problem(self, name: str, now: float, duration: float) -> Finding | None:
        """``check_overrun`` when runs of ``name`` were skipped because its own runs take its whole interval.

        Runs skipped while the check's runs are short waited for a worker: the replica is past its capacity,
        which is no single check's incident (a saturated replica would open one per check, and spend its CPU
        on them): they are counted (``aiops_check_ticks_skipped_total``), logged once a minute, alerted on by
        the rate of that counter (deploy/prometheus/aiops-rules.yaml) and raise the replica's own incident
        (:mod:`aiops.engine.capacity`)."""
        missed = self.skipped.take(name)
        if not missed:
            return None
        check = self._runtime.checks.get(name)
        every = check.config.every if check is not None else None
        if every is not None and duration < every:
            return None
        summary = f"check {name} skipped {missed} scheduled run(s): it runs longer than its interval"
        return scheduler_problem("check_overrun", summary, {"skipped_runs": missed}, now)

    def _capacity_tick(self) -> None:
        """Raise or resolve this replica's ``check_overrun`` incident for runs skipped because no worker was
        free (:mod:`aiops.engine.capacity`): at most one sighting a minute. Once a minute, also resolve the
        incidents of replicas that are gone (a restarted daemon is a new replica: its old id is never seen
        again, so nobody else would)."""
        event = self.capacity.poll()
        if event is not None:
            try:
                self._report_capacity(event)
            except Exception:
                self.capacity.retry(event)
                raise
        if self.capacity.look_for_gone_replicas():
            self._resolve_gone_replicas()

    def _replica_config(self) -> CheckConfig:
        return replica_config(every_receiver(cr.config for cr in self._runtime.checks.values()))

    def _report_capacity(self, event: Overloaded | Recovered) -> None:
        cfg = self._replica_config()
        if isinstance(event, Overloaded):
            workers = self._slots.workers if self._slots is not None else self.workers
            name = f"{socket.gethostname()}:{os.getpid()}"
            finding = overloaded_finding(event, self.owner, name, workers, self.clock.now())
            self.telemetry.finding(REPLICA_CHECK, finding.kind)
            self.incidents.replica_problem(cfg, finding)
            return
        reason = f"no check run skipped for want of a worker for {event.quiet:.0f}s"
        self.incidents.replica_problem_over(cfg, replica_fingerprint(self.owner), reason)

    def _resolve_gone_replicas(self) -> None:
        open_ = self.store.list_incidents(open_only=True, check=REPLICA_CHECK, limit=1000)
        gone = [row for row in open_ if row.labels.get("replica") != self.owner]
        if not gone:
            return
        live = self.membership.live(STALE_AFTER)
        cfg = self._replica_config()
        for row in gone:
            replica = row.labels.get("replica", "")
            if replica not in live:
                self.incidents.replica_problem_over(cfg, row.fingerprint, f"replica {replica} is gone")

    def _lease_tick(self) -> None:
        """Renew this replica's check leases, give up its surplus and claim its fair share (when a round is
        due); a check it has just gained starts again from the state its previous owner saved."""
        try:
            done = self.leases.tick(list(self._runtime.checks))
        except Exception as exc:
            log.error("lease round failed", error=repr(exc), exc_info=exc)
            return
        if done is None:
            return
        for name in done.acquired:
            runner = self._runners.get(name)
            if runner is not None:
                runner.reload()
        if self._scheduler is not None:  # at start the scheduler schedules what the first round claimed
            with self._runtime_lock:
                checks = self._runtime.checks
                for name in done.lost:
                    self._unschedule_check(name)
                for name in done.acquired:
                    if name in checks:
                        self._schedule_check(name, checks[name].config)
        self.lease_metrics.taken_over(done.taken_over)
        if done.acquired or done.lost:
            log.info(
                "check leases changed",
                acquired=len(done.acquired),
                taken_over=done.taken_over,
                lost=len(done.lost),
                owned=done.owned,
                replicas=done.live,
            )

    def _check_tick(self, name: str) -> None:
        runner = self._runners.get(name)
        fence = self.leases.fence(name)
        if runner is None or fence is None or self._stop.is_set():
            return  # another replica runs this check
        try:
            with self.store.fenced(fence):
                self._run_check(name, runner)
        except LeaseLost as exc:
            # a replica took the check over while this tick ran: its writes are refused, its result dropped
            if (name, fence.token) not in self._fenced_out:
                self._fenced_out.add((name, fence.token))
                log.warning("check taken over during its tick; result discarded", check=name, error=str(exc))

    def _run_check(self, name: str, runner: CheckRunner) -> None:
        try:
            result = runner.tick(self.clock.now())
        except LeaseLost:
            raise
        except Exception as exc:
            log.error("check tick failed", check=name, error=repr(exc), exc_info=exc)
            self.telemetry.check_run(name, "error", 0.0)
            self._ticks[name] = CheckTick(time.time(), "error", 0.0, "check tick failed; see the daemon's log")
            return
        self.telemetry.check_run(name, result.outcome, result.duration)
        self._ticks[name] = CheckTick(time.time(), result.outcome, result.duration, result.error)
        overrun = self._overrun_problem(name, self.clock.now(), result.duration)
        if overrun is not None:
            result.problems.append(overrun)
        for f in [*result.findings, *result.problems]:
            self.telemetry.finding(name, f.kind)
        if result.outcome != "ok":
            log.warning("check run failed", check=name, outcome=result.outcome, error=result.error)
        try:
            self.incidents.observe(result)
        except LeaseLost:
            raise
        except Exception as exc:
            log.error("incident update failed", check=name, error=repr(exc), exc_info=exc)

    @staticmethod
    def _logged(failure: str, tick: Callable[[], object]) -> Callable[[], None]:
        """A background tick whose exception is logged as ``failure`` with its traceback: the job runs again
        a second later, and one bad tick must not be lost in the scheduler's own generic message."""

        def run() -> None:
            try:
                tick()
            except Exception as exc:
                log.error(failure, error=repr(exc), exc_info=exc)

        return run

    # -- reload ----------------------------------------------------------------------------------------

    def reload(self) -> tuple[bool, str]:
        notify("RELOADING=1", self.notify_socket)
        try:
            outcome = self._reload()
        finally:
            notify("READY=1", self.notify_socket)
        if outcome[0] and self._froze:
            refreeze_after_reload()  # after _reload's frame is gone, so the replaced runtime is not kept frozen
        return outcome

    def _freeze_long_lived(self) -> None:
        """Once ready: what exists now lives until exit, out of the collector's full passes (they paused every
        request and tick; see aiops/long_lived_objects.py)."""
        freeze_start_up_objects()
        self._froze = True

    def _reload(self) -> tuple[bool, str]:
        try:
            config = load_config(self._config_path)
            if _store_url(config) != _store_url(self.config):
                raise AiopsError("store.url cannot change on reload; restart the daemon")
            runtime = build_runtime(config, self._plugin_context(config))
        except (ConfigError, AiopsError) as exc:
            self.telemetry.config_reloaded(False)
            log.error("reload rejected; the previous configuration keeps running", error=str(exc))
            return False, str(exc)
        except Exception as exc:  # a plugin's constructor failing oddly must not kill the reload thread
            self.telemetry.config_reloaded(False)
            log.error("reload rejected; the previous configuration keeps running", error=repr(exc), exc_info=exc)
            return False, f"cannot build the new configuration: {exc.__class__.__name__}: {exc}"
        with self._runtime_lock:
            self.config = config
            replaced, self._runtime = self._runtime, runtime
            runners = list(self._runners.values())
            if self._scheduler is not None:
                self._schedule_checks(runtime)
        self._stop_plugins(replaced, runners)
        add_secrets(config.secrets)
        self.telemetry.config_reloaded(True)
        log.info("configuration reloaded", checks=len(runtime.checks))
        if config.settings.workers != self.workers:  # the pool and the store's connections are sized at start
            log.warning("workers is read at start: the change applies after a restart", running=self.workers)
        return True, "reloaded"

    # -- ApiBackend ------------------------------------------------------------------------------------

    def ready(self) -> tuple[bool, str]:
        if self._scheduler is None or not self._scheduler.running:
            return False, "scheduler not running"
        problem = self.store.probe_write(self.clock.now())
        if problem is not None:
            return False, f"store cannot record decisions: {problem}"
        return True, ""

    def list_incidents(self, state: str | None, limit: int) -> list[dict[str, Any]]:
        rows = self.store.list_incidents(state=state, limit=limit)
        return self.feedback.with_verdicts([incident_dict(r) for r in rows])

    def get_incident(self, incident_id: int) -> dict[str, Any] | None:
        row = self.store.get_incident(incident_id)
        if row is None:
            return None
        out = incident_dict(row)
        out["transitions"] = [t.to_json() for t in self.store.transitions(incident_id)]
        out["verdicts"] = self.feedback.verdicts_of(incident_id)
        out["actions"] = [a.to_json() for a in self.store.list_actions(incident_id=incident_id)]
        keys = ("id", "notifier", "event", "state", "attempts", "last_error", "sent_at")
        out["notifications"] = [n.to_json(keys) for n in self.store.list_notifications(incident_id=incident_id)]
        return out

    def acknowledge(self, incident_id: int, actor: str, comment: str) -> dict[str, Any]:
        return incident_dict(self.incidents.acknowledge(incident_id, actor, comment))

    def silence(self, incident_id: int, actor: str, duration_seconds: float, comment: str) -> dict[str, Any]:
        return incident_dict(self.incidents.silence(incident_id, actor, duration_seconds, comment))

    def approve(self, action_id: int, actor: str, approved: bool) -> dict[str, Any]:
        return self.incidents.decide_approval(action_id, approved, actor).to_json()

    def list_actions(self, state: str | None, limit: int) -> list[dict[str, Any]]:
        return [a.to_json() for a in self.store.list_actions(state=state, limit=limit)]

    def _recorded(self, name: str, cr: CheckRuntime) -> CheckRuntime:
        """The check with its source recording what it collects (the console plots it), rebuilt ones too."""
        rebuild = cr.rebuild

        def fresh() -> tuple[Any, dict[str, Any]]:
            assert rebuild is not None
            source, detectors = rebuild()
            return RecordingSource(source, name, self.history), detectors

        return dataclasses.replace(
            cr, source=RecordingSource(cr.source, name, self.history), rebuild=fresh if rebuild is not None else None
        )

    def list_checks(self) -> list[dict[str, Any]]:
        """Each configured check with its schedule, source, detectors, owner and last tick (console)."""
        out = []
        for name, cr in self.runtime().checks.items():
            cfg = cr.config
            tick = self._ticks.get(name)
            out.append(
                {
                    "name": name,
                    "schedule": f"every {cfg.every:g}s" if cfg.every is not None else f"cron {cfg.cron}",
                    "source": str(cfg.source.get("type", "")),
                    "detectors": [str(d.get("type", "")) for d in cfg.detectors],
                    "owner": cfg.labels.get("owner") or cfg.labels.get("team"),
                    "last_tick_at": tick.at if tick else None,
                    "health": tick.outcome if tick else "not run yet",
                    "duration": tick.duration if tick else None,
                    "error": tick.error if tick else None,
                }
            )
        return out

    def recent_series(self, check: str, start: float, end: float) -> list[dict[str, Any]]:
        """The points each series of ``check`` had in ``[start, end]``, as far as this process recorded them."""
        return [s.to_dict() for s in self.history.window(check, start, end)]

    def list_backtests(self) -> list[dict[str, Any]]:
        """Backtest results saved with ``aiops backtest --save`` under this config's state_dir (console)."""
        from aiops.backtest.saved import listing

        return [dataclasses.asdict(b) for b in listing(self.config.settings.state_dir)]

    def get_backtest(self, name: str) -> dict[str, Any]:
        """One saved backtest: ``{"config": result, "against": result?}`` as records (console)."""
        from aiops.backtest.saved import load

        return dict(load(self.config.settings.state_dir, name))

    def set_paused(self, paused: bool, actor: str) -> None:
        self.store.set_flag(PAUSED_FLAG, "1" if paused else "0")
        self._paused = paused
        self.telemetry.set_paused(paused)
        log.warning("kill switch " + ("on: no remediation will run" if paused else "off"), actor=actor)

    def append_events(self, rows: list[PushedEvent]) -> dict[str, Any]:
        """Pushed telemetry (IngestBackend): stored in one transaction before the request is answered.

        At most once an hour, rows older than EVENT_RETENTION are deleted on the way, so the table stays
        bounded without another scheduled job; a push source that has not read for that long loses them.
        """
        now = self.clock.now()
        ids = self.store.append_events(rows, now)
        if now - getattr(self, "_events_pruned_at", 0.0) >= 3600.0:
            self._events_pruned_at = now
            try:
                self.store.prune_events(now - EVENT_RETENTION)
            except AiopsError as exc:
                log.warning("pruning pushed telemetry failed", error=str(exc))
        return {"accepted": len(ids), "first_id": ids[0] if ids else None, "last_id": ids[-1] if ids else None}


@dataclass(frozen=True)
class CheckTick:
    """How the last tick of a check went: when (wall clock), its outcome (ok/error/timeout), how long."""

    at: float
    outcome: str
    duration: float
    error: str | None


def _store_url(config: Config) -> str:
    return config.settings.store.url


def _token(config: Config) -> str | None:
    return api_token(config.settings)


def _now_dt() -> Any:
    import datetime

    return datetime.datetime.now(datetime.UTC)
