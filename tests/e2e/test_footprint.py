"""A daemon running ``default`` starts light: SciPy, scikit-learn and pandas are never imported (only the
plugins that use them import them), and once ``aiops warm-cache`` has built its kernels ahead of time it
loads no compiler either (numba and LLVM are about half of an idle daemon's memory), idles under 150 MB and
is ready promptly. Without that build (``AIOPS_KERNELS=jit``, or no C compiler where warm-cache ran) the
same daemon runs the numba JIT from its cache. A daemon whose detectors need no compiled code
(``threshold``) does not import numba either way.

The build's functions must be the JIT's functions: the same bits out for the same input, and the GIL
released while they run (ingest requests are served during a tick), both checked here against the JIT.

The daemon runs in a fresh interpreter (a subprocess), is started, fed a point and left to tick, then
reports its own ``sys.modules`` and resident memory. The readiness bound is generous because the CI machine
is shared; the measured figures are in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import pytest

pytestmark = pytest.mark.slow  # compiles every kernel once, ahead of time (~15 s CPU) and with numba

IDLE_RSS_MB = 150.0  # the target, with a default check ticking; measured ~110 MB (benchmarks/footprint.py)

CONFIG = """
store: {{url: "sqlite:///{work}/aiops.db"}}
state_dir: {work}/state
server: {{listen: "127.0.0.1:0"}}
checks:
  - name: fleet
    every: 0.5s
    source: {{type: push, stream: fleet}}
    detectors: [{{type: {detector}}}]
    policy: {{}}
"""

CHILD = """
import json, sys, time
from aiops.config.loader import load_config
from aiops.daemon import Daemon
from aiops.store.records import EventKind, PushedEvent

daemon = Daemon(load_config(sys.argv[1]))
daemon.start()
while not daemon.ready()[0]:
    time.sleep(0.01)
print("@@ready", flush=True)
now = time.time()
daemon.append_events([PushedEvent("fleet", EventKind.POINT, "m", now, 1.0)])
time.sleep(2.0)  # a few ticks: whatever a tick imports is imported by now
ran = daemon.store.load_check_state("fleet") is not None
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("scipy", "sklearn", "pandas", "matplotlib"))
compiled = sorted(m for m in ("numba", "llvmlite") if m in sys.modules)
rss = [int(line.split()[1]) / 1024 for line in open("/proc/self/status") if line.startswith("VmRSS:")][0]
daemon.shutdown()
print("@@" + json.dumps({"heavy": heavy, "compiled": compiled, "ran": ran, "rss_mb": rss}), flush=True)
"""

# In a JIT interpreter: every export of the build against the numba function it was compiled from.
SAME_AS_JIT = """
import json, math, sys, threading, time
import numpy as np
from aiops_detectors.anomaly import _aot, _batch, _bocpd_kernel, _default_kernel, _robust_kernel
from aiops_detectors.anomaly.bocpd import BocpdDetector
from aiops_detectors.anomaly.ensemble import DefaultDetector
from aiops_detectors.robust_zscore import RobustZScoreDetector

assert "numba" in sys.modules, "the reference must be the JIT"
aot = _aot.load_file(_aot.module_path())
assert aot is not None, "no build for these sources"
rng = np.random.default_rng(7)
xs = np.cumsum(rng.normal(size=3000)) + 8.0 * (rng.random(3000) < 0.01)
xs[[5, 700, 2100]] = math.nan
different = []

def same(name, a, b):
    if a.shape != b.shape or a.tobytes() != b.tobytes():
        different.append(name)

def export(kernel, fn):
    return getattr(aot, _aot.symbol(getattr(kernel, fn)))

for kernel, detector in ((_default_kernel, DefaultDetector), (_robust_kernel, RobustZScoreDetector),
                         (_bocpd_kernel, BocpdDetector)):
    name = kernel.__name__.rsplit(".", 1)[-1]
    scorer = detector().new_scorer()
    p, fresh = scorer.p, scorer.st.copy()
    runs = {}
    for how, run in (("jit", kernel.run), ("aot", export(kernel, "run"))):
        st, out = fresh.copy(), np.empty(len(xs))
        run(st, p, np.repeat(xs, 2)[::2] if how == "aot" else xs, out)  # the build reads a strided view right
        runs[how] = (st, out)
    same(name + ".run scores", runs["jit"][1], runs["aot"][1])
    same(name + ".run state", runs["jit"][0], runs["aot"][0])
    steps = {}
    for how, step in (("jit", kernel.step), ("aot", export(kernel, "step"))):
        st = runs["jit"][0].copy()
        args = (math.nan,) if kernel is _default_kernel else ()
        steps[how] = (st, np.array([step(st, p, x, *args) for x in (1.0, -40.0, 3.5)]))
    same(name + ".step scores", steps["jit"][1], steps["aot"][1])
    same(name + ".step state", steps["jit"][0], steps["aot"][0])
    if hasattr(kernel, "step_rows"):
        bank = np.vstack([runs["jit"][0], fresh, runs["jit"][0]])
        rows, values = np.array([2, 0, 1]), np.array([50.0, 1.0, -3.0])
        ticks = {}
        for how, step_rows in (("jit", kernel.step_rows), ("aot", export(kernel, "step_rows"))):
            b, out = bank.copy(), np.empty(3)
            step_rows(b, p, rows, values, out)
            ticks[how] = (b, out)
        same(name + ".step_rows scores", ticks["jit"][1], ticks["aot"][1])
        same(name + ".step_rows bank", ticks["jit"][0], ticks["aot"][0])
ts = np.arange(len(xs), dtype=float)
batch = (("ewma_run", np.zeros(4), (0.05, 0.02, 5.0, 30)), ("cusum_run", np.zeros(6), (0.01, 0.5, 8.0, 50)))
for fn, st0, args in batch:
    a, b = st0.copy(), st0.copy()
    same(fn + " scores", getattr(_batch, fn)(a, *args, ts, xs), export(_batch, fn)(b, *args, ts, xs))
    same(fn + " state", a, b)

# The GIL: another thread must run while a long build call runs (it could not if the call held the GIL).
stamps, done = [], threading.Event()
def beat():
    while not done.is_set():
        stamps.append(time.perf_counter())
thread = threading.Thread(target=beat)
thread.start()
time.sleep(0.05)
scorer = DefaultDetector().new_scorer()
long = np.tile(np.nan_to_num(xs), 20)
started = time.perf_counter()
export(_default_kernel, "run")(scorer.st, scorer.p, long, np.empty(len(long)))
ended = time.perf_counter()
done.set()
thread.join()
quarter = (ended - started) / 4  # the middle half: clear of the GIL hand-overs at the call's edges
during = sum(1 for t in stamps if started + quarter < t < ended - quarter)
print("@@" + json.dumps({"different": different, "beats_during_call": during, "call_s": ended - started}))
"""


@pytest.fixture(scope="module")
def built_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache directory filled by ``aiops warm-cache``: the ahead-of-time build of the kernels."""
    cache = tmp_path_factory.mktemp("kernel-cache")
    warm = _aiops(["warm-cache", "--detector", "default"], cache)
    assert warm.returncode == 0, warm.stderr
    assert "compiled ahead of time" in warm.stdout and "numba is not loaded" in warm.stdout, warm.stdout
    assert len(list(cache.glob("_aiops_kernels-*"))) == 1
    return cache


def test_a_default_daemon_on_the_built_kernels_loads_no_compiler_and_idles_light(
    tmp_path: Path, built_cache: Path
) -> None:
    started = time.monotonic()
    report = _run_daemon(tmp_path, "default", {"NUMBA_CACHE_DIR": str(built_cache)})
    ready = time.monotonic() - started
    assert report["ran"]  # the compiled detector really ran
    assert report["compiled"] == [] and report["heavy"] == []
    assert report["rss_mb"] < IDLE_RSS_MB, f"{report['rss_mb']:.0f} MB"
    assert ready < 60, f"ready after {ready:.1f} s"
    print(f"ready in {ready:.2f} s, {report['rss_mb']:.0f} MB")


def test_without_the_build_a_default_daemon_runs_the_jit_from_its_cache(tmp_path: Path, built_cache: Path) -> None:
    jit = {"NUMBA_CACHE_DIR": str(built_cache), "AIOPS_KERNELS": "jit"}
    warm = _aiops(["warm-cache", "--detector", "default"], built_cache, jit)
    assert warm.returncode == 0 and "numba's cache" in warm.stdout, warm.stdout + warm.stderr
    report = _run_daemon(tmp_path, "default", jit)
    assert "numba" in report["compiled"] and report["ran"]
    assert report["heavy"] == []


def test_the_built_kernels_are_the_jit_bit_for_bit_and_release_the_gil(built_cache: Path) -> None:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(built_cache), "AIOPS_KERNELS": "jit"}
    done = subprocess.run([sys.executable, "-c", SAME_AS_JIT], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(next(line[2:] for line in done.stdout.splitlines() if line.startswith("@@")))
    assert report["different"] == []
    assert report["beats_during_call"] > 0, f"no other thread ran during a {report['call_s']:.2f} s call"


def test_a_threshold_only_daemon_imports_no_compiler(tmp_path: Path) -> None:
    """numba and LLVM are half of an idle daemon's memory: only a configured detector that runs compiled
    kernels may load them (the bundled plugins import their kernels when built, never at start)."""
    report = _run_daemon(tmp_path, "threshold, above: 10", {"AIOPS_KERNELS": "jit"})
    assert report["ran"]
    assert report["compiled"] == [] and report["heavy"] == []


def _aiops(args: list[str], cache: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "NUMBA_CACHE_DIR": str(cache), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "aiops", *args], env=environment, capture_output=True, text=True, check=False
    )


def _run_daemon(work: Path, detector: str, env: dict[str, str]) -> dict[str, Any]:
    """Start the daemon in a fresh interpreter with one check of ``detector``; its report once it ticked."""
    config = work / "aiops.yaml"
    config.write_text(CONFIG.format(work=work, detector=detector))
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(config)],
        cwd=work,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert _marked(proc.stdout) == "ready"
    report: dict[str, Any] = json.loads(_marked(proc.stdout))
    proc.stdout.read()  # the shutdown logs
    assert proc.wait(30) == 0
    return report


def _marked(out: IO[str]) -> str:
    """The child's next ``@@`` line (its log lines go to the same stdout)."""
    for line in out:
        if line.startswith("@@"):
            return line[2:].strip()
    raise AssertionError("the daemon process ended without reporting")
