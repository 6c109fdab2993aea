"""Host telemetry through psutil: CPU, memory, disk usage and the liveness and size of named processes."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import psutil
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aiops.plugins import Source
from aiops.types import Finding, Frame, Series

HOST_METRICS = ("host_cpu_percent", "host_memory_percent", "host_disk_percent")
PROCESS_METRICS = (
    "process_up",
    "process_rss_bytes",
    "process_cpu_percent",
    "process_count",
    "process_restarts",  # processes that appeared since the previous tick, after the first tick (a restart)
    "process_open_files",  # open file descriptors (files, sockets, pipes): a leak shows here first
)
ALL_METRICS = HOST_METRICS + PROCESS_METRICS


class ProcessSpec(BaseModel):
    """One process to watch: found by pid file, by exact name, or by a substring of its command line."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="label value process=<name> of its series")
    match: str | None = Field(
        None, description="exact process name or substring of its command line (default: the name)"
    )
    pidfile: str | None = Field(None, description="file holding the pid; the process must also match if set")


class HostParams(BaseModel):
    """Parameters of the host source."""

    model_config = ConfigDict(extra="forbid")

    metrics: list[str] = Field(
        default_factory=lambda: list(ALL_METRICS), description=f"metrics to collect, from {', '.join(ALL_METRICS)}"
    )
    disk_paths: list[str] = Field(default_factory=lambda: ["/"], description="mount points for host_disk_percent")
    processes: list[ProcessSpec] = Field(default_factory=list, description="processes to watch")

    @field_validator("metrics")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [m for m in value if m not in ALL_METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(ALL_METRICS)}")
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> HostParams:
        names = [p.name for p in self.processes]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate process name(s): {', '.join(dup)}")
        return self


class HostSource(Source):
    """Host CPU, memory and disk usage plus per-process up/RSS/CPU/count, read with psutil.

    Why: the most common self-healing case is "the pipeline process died" or "the disk is filling up"; this
    makes both one config block without an exporter. Every call is cheap and non-blocking (CPU percentages
    are deltas since the previous call, never a sleep). A process that vanishes or is not readable while it
    is inspected is skipped and reported as a ``data_quality`` problem in the frame; it never fails the tick.
    A process that is simply not running yields ``process_up 0``, which is what a check alerts on.
    """

    Params: ClassVar[type[BaseModel]] = HostParams

    def __init__(
        self,
        *,
        metrics: list[str] | None = None,
        disk_paths: list[str] | None = None,
        processes: list[dict[str, Any]] | list[ProcessSpec] | None = None,
    ) -> None:
        raw: dict[str, Any] = {
            "processes": [p.model_dump() if isinstance(p, ProcessSpec) else p for p in processes or []]
        }
        if metrics is not None:
            raw["metrics"] = list(metrics)
        if disk_paths is not None:
            raw["disk_paths"] = list(disk_paths)
        self.params: HostParams = self.validate_params(raw)
        self._last_cpu_times: Any = None
        self._procs: dict[tuple[int, float], psutil.Process] = {}
        self._known: dict[str, set[tuple[int, float]]] = {}  # per spec: processes seen last tick (restarts)

    def collect(self, since: float | None, until: float) -> Frame:
        wanted = set(self.params.metrics)
        series: list[Series] = []
        problems: dict[str, _Problem] = {}

        def point(name: str, value: float, labels: dict[str, str] | None = None) -> None:
            series.append(Series(name=name, timestamps=(until,), values=(float(value),), labels=labels or {}))

        if "host_cpu_percent" in wanted:
            point("host_cpu_percent", self._cpu_percent())
        if "host_memory_percent" in wanted:
            point("host_memory_percent", psutil.virtual_memory().percent)
        if "host_disk_percent" in wanted:
            for path in self.params.disk_paths:
                try:
                    point("host_disk_percent", psutil.disk_usage(path).percent, {"path": path})
                except OSError as exc:
                    _note(problems, "disk_unavailable", f"{path}: {exc.strerror or exc}")
        if wanted.intersection(PROCESS_METRICS) and self.params.processes:
            self._collect_processes(wanted, point, problems)
        return Frame(
            source="host",
            collected_at=until,
            series=tuple(series),
            problems=tuple(p.finding(until) for p in problems.values()),
        )

    # ------------------------------------------------------------------ internals

    def _cpu_percent(self) -> float:
        """Busy share of all CPUs since the previous call, computed from our own baseline, not psutil's global one
        (another caller of ``psutil.cpu_percent()`` in the process would otherwise reset it)."""
        now = psutil.cpu_times()
        last, self._last_cpu_times = self._last_cpu_times, now
        if last is None:
            return float(psutil.cpu_percent(interval=None))
        total = _cpu_total(now) - _cpu_total(last)
        idle = _cpu_idle(now) - _cpu_idle(last)
        if total <= 0:
            return 0.0
        return max(0.0, min(100.0, 100.0 * (total - idle) / total))

    def _collect_processes(
        self,
        wanted: set[str],
        point: Any,
        problems: dict[str, _Problem],
    ) -> None:
        specs = self.params.processes
        needs_scan = any(spec.pidfile is None for spec in specs)
        table = list(self._scan(problems)) if needs_scan else []
        matched_keys: set[tuple[int, float]] = set()
        for spec in specs:
            procs = self._pidfile_process(spec, problems) if spec.pidfile else self._match(spec, table)
            rss = cpu = fds = 0.0
            count = 0
            current: set[tuple[int, float]] = set()
            for proc in procs:
                try:
                    with proc.oneshot():
                        rss += proc.memory_info().rss
                        cpu += proc.cpu_percent(interval=None)
                        if "process_open_files" in wanted:
                            fds += _open_files(proc)
                    count += 1
                    matched_keys.add((proc.pid, proc.create_time()))
                    current.add((proc.pid, proc.create_time()))
                except psutil.NoSuchProcess:
                    _note(problems, "process_vanished", f"{spec.name}: pid {proc.pid} exited while inspected")
                except psutil.AccessDenied:
                    _note(problems, "access_denied", f"{spec.name}: pid {proc.pid} not readable")
                    count += 1  # it exists, we just cannot measure it
                    matched_keys.add((proc.pid, _safe_create_time(proc)))
                    current.add((proc.pid, _safe_create_time(proc)))
                except psutil.Error as exc:
                    _note(problems, "process_error", f"{spec.name}: pid {proc.pid}: {type(exc).__name__}")
            labels = {"process": spec.name}
            if "process_up" in wanted:
                point("process_up", 1.0 if count else 0.0, labels)
            if "process_count" in wanted:
                point("process_count", float(count), labels)
            if "process_rss_bytes" in wanted:
                point("process_rss_bytes", rss, labels)
            if "process_cpu_percent" in wanted:
                point("process_cpu_percent", cpu, labels)
            known = self._known.get(spec.name)
            if "process_restarts" in wanted:
                # The first tick only learns what runs; afterwards every new (pid, start time) is a (re)start.
                point("process_restarts", float(len(current - known)) if known is not None else 0.0, labels)
            self._known[spec.name] = current
            if "process_open_files" in wanted:
                point("process_open_files", fds, labels)
        # Forget processes no longer matched, so the cache does not grow with every restart.
        self._procs = {k: p for k, p in self._procs.items() if k in matched_keys}

    def _scan(self, problems: dict[str, _Problem]) -> Iterable[tuple[psutil.Process, str, str]]:
        me = os.getpid()
        for proc in psutil.process_iter(["name", "cmdline"]):
            if proc.pid == me:
                continue  # the daemon's own command line may well contain the pattern
            try:
                name = proc.info.get("name") or ""
                cmdline = " ".join(proc.info.get("cmdline") or [])
            except Exception:  # psutil fills info lazily on some platforms
                _note(problems, "process_error", f"pid {proc.pid}: unreadable")
                continue
            yield proc, name, cmdline

    def _cached(self, proc: psutil.Process) -> psutil.Process:
        """The same Process object across calls, so ``cpu_percent(interval=None)`` measures since last tick."""
        key = (proc.pid, _safe_create_time(proc))
        cached = self._procs.get(key)
        if cached is None:
            cached = self._procs[key] = proc
        return cached

    def _match(self, spec: ProcessSpec, table: list[tuple[psutil.Process, str, str]]) -> list[psutil.Process]:
        pattern = spec.match or spec.name
        return [self._cached(proc) for proc, name, cmdline in table if name == pattern or pattern in cmdline]

    def _pidfile_process(self, spec: ProcessSpec, problems: dict[str, _Problem]) -> list[psutil.Process]:
        assert spec.pidfile is not None
        try:
            text = Path(spec.pidfile).read_text().strip()
        except FileNotFoundError:
            return []  # no pid file: the service is not running, which process_up 0 says
        except OSError as exc:
            _note(problems, "pidfile_unreadable", f"{spec.name}: {spec.pidfile}: {exc.strerror or exc}")
            return []
        try:
            pid = int(text.split()[0])
        except (ValueError, IndexError):
            _note(problems, "pidfile_invalid", f"{spec.name}: {spec.pidfile}: {text[:40]!r}")
            return []
        try:
            proc = self._cached(psutil.Process(pid))
            if not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE:
                return []
            if spec.match:
                name, cmdline = proc.name(), " ".join(proc.cmdline())
                if spec.match != name and spec.match not in cmdline:
                    return []  # stale pid file whose pid now belongs to another program
        except psutil.NoSuchProcess:
            return []
        except psutil.AccessDenied:
            _note(problems, "access_denied", f"{spec.name}: pid {pid} not readable")
            return []
        return [proc]


def _open_files(proc: psutil.Process) -> float:
    """Open file descriptors where the OS counts them cheaply (Unix), else open regular files."""
    num_fds = getattr(proc, "num_fds", None)
    if callable(num_fds):
        return float(num_fds())
    return float(len(proc.open_files()))


def _safe_create_time(proc: psutil.Process) -> float:
    try:
        return float(proc.create_time())
    except psutil.Error:
        return 0.0


def _cpu_total(t: Any) -> float:
    total = float(sum(t))
    # On Linux guest time is already counted in user/nice; psutil does the same subtraction.
    return total - float(getattr(t, "guest", 0.0)) - float(getattr(t, "guest_nice", 0.0))


def _cpu_idle(t: Any) -> float:
    return float(getattr(t, "idle", 0.0)) + float(getattr(t, "iowait", 0.0))


class _Problem:
    """Occurrences of one kind of problem during a collection, turned into one data-quality finding."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0
        self.examples: list[str] = []

    def add(self, example: str) -> None:
        self.count += 1
        if len(self.examples) < 3:
            self.examples.append(example[:200])

    def finding(self, at: float) -> Finding:
        return Finding(
            kind="data_quality",
            detector="host",
            summary=f"host source: {self.count} x {self.name.replace('_', ' ')}",
            labels={"source": "host", "problem": self.name},
            evidence={"count": self.count, "examples": list(self.examples)},
            observed_at=at,
        )


def _note(problems: dict[str, _Problem], name: str, example: str) -> None:
    problems.setdefault(name, _Problem(name)).add(example)
