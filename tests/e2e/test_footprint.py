"""A daemon running ``default`` starts light: SciPy, scikit-learn and pandas are never imported (only the
plugins that use them import them), and it is ready promptly once the compiled-code cache is warm. A daemon
whose detectors need no compiled code (``threshold``) does not even import numba.

The daemon runs in a fresh interpreter (a subprocess), is started, fed a point and left to tick, then
reports its own ``sys.modules``. The readiness bound is generous because the CI machine is shared; the
measured figures are in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

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
daemon.shutdown()
print("@@" + json.dumps({"heavy": heavy, "compiled": compiled, "ran": ran}), flush=True)
"""


def test_a_default_daemon_imports_no_heavy_library_and_is_ready_promptly(tmp_path: Path) -> None:
    warm = subprocess.run([sys.executable, "-m", "aiops", "warm-cache", "--detector", "default"], check=False)
    assert warm.returncode == 0
    started = time.monotonic()
    report = _run_daemon(tmp_path, "default")
    ready = time.monotonic() - started
    assert "numba" in report["compiled"] and report["ran"]  # the compiled detector really ran
    assert report["heavy"] == []
    assert ready < 60, f"ready after {ready:.1f} s"
    print(f"ready in {ready:.2f} s")


def test_a_threshold_only_daemon_imports_no_compiler(tmp_path: Path) -> None:
    """numba and LLVM are half of an idle daemon's memory: only a configured detector that runs compiled
    kernels may load them (the bundled plugins import their kernels when built, never at start)."""
    report = _run_daemon(tmp_path, "threshold, above: 10")
    assert report["ran"]
    assert report["compiled"] == [] and report["heavy"] == []


def _run_daemon(work: Path, detector: str) -> dict[str, Any]:
    """Start the daemon in a fresh interpreter with one check of ``detector``; its report once it ticked."""
    config = work / "aiops.yaml"
    config.write_text(CONFIG.format(work=work, detector=detector))
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(config)], cwd=work, stdout=subprocess.PIPE, text=True)
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
