"""Start-up and idle footprint of the daemon (a real ``aiops run`` subprocess), per detector configuration.

    .venv/bin/python benchmarks/footprint.py --rounds 3

For each configuration: wall seconds from process start to the first 200 on ``/readyz``, the CPU seconds the
process had used by then (user + system, from /proc: what the start costs, whatever else the machine runs),
and the resident memory after idling 5 s with one check ticking every second. The baseline, in the same
run, is a bare interpreter importing nothing, so the ratios say what the daemon adds. ``default`` runs twice:
on the ahead-of-time build of its kernels (what ``aiops warm-cache`` makes; numba is never imported) and on
numba's JIT cache (``AIOPS_KERNELS=jit``, the fallback where no build can be made: what every daemon ran
before the build existed). Both are warmed first here.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

CONFIG = """store: {{url: "sqlite:///{work}/aiops.db"}}
state_dir: {work}/state
checks:
  - name: fleet
    every: 1s
    source: {{type: push, stream: fleet}}
    detectors: [{{type: {detector}}}]
    policy: {{}}
"""
DETECTORS = {  # name: (detector, environment)
    "threshold (no compiled code)": ("threshold, above: 10", {}),
    "default (numba JIT cache)": ("default", {"AIOPS_KERNELS": "jit"}),
    "default (ahead-of-time build)": ("default", {}),
}
TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def daemon(detector: str, env: dict[str, str], work: Path) -> tuple[float, float, float]:
    """(ready wall s, CPU s at ready, RSS MB after 5 s idle) of one daemon."""
    config = work / "aiops.yaml"
    config.write_text(CONFIG.format(work=work, detector=detector))
    port = _free_port()
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiops", "run", "--config", str(config), "--listen", f"127.0.0.1:{port}"],
        cwd=work,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the daemon exited with {proc.returncode}")
            try:
                if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.02)
        ready, cpu = time.monotonic() - started, _cpu_seconds(proc.pid)
        time.sleep(5.0)
        return ready, cpu, _rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)


def bare() -> tuple[float, float, float]:
    """The same three figures for an interpreter that imports nothing and sleeps (the floor)."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; print(flush=True); time.sleep(3)"], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    ready, cpu, rss = time.monotonic() - started, _cpu_seconds(proc.pid), _rss_mb(proc.pid)
    proc.wait()
    return ready, cpu, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="starts per configuration (medians reported)")
    args = parser.parse_args()
    for env in ({}, {"AIOPS_KERNELS": "jit"}):  # the build, then numba's cache for the JIT runs
        subprocess.run(
            [sys.executable, "-m", "aiops", "warm-cache", "--detector", "default"],
            env={**os.environ, **env},
            check=True,
            capture_output=True,
        )
    samples: dict[str, list[tuple[float, float, float]]] = {"bare interpreter (baseline)": []}
    samples.update({name: [] for name in DETECTORS})
    for _ in range(args.rounds):  # interleaved, so a change in machine load hits every configuration
        samples["bare interpreter (baseline)"].append(bare())
        for name, (detector, env) in DETECTORS.items():
            with tempfile.TemporaryDirectory(prefix="aiops-footprint-") as tmp:
                samples[name].append(daemon(detector, env, Path(tmp)))
    base = [statistics.median(s[i] for s in samples["bare interpreter (baseline)"]) for i in range(3)]
    print(f"{args.rounds} starts each, medians; load average {os.getloadavg()[0]:.1f}")
    print(f"{'configuration':<32}{'ready s':>9}{'CPU s':>8}{'RSS MB':>8}{'x RSS':>7}")
    for name, runs in samples.items():
        ready, cpu, rss = (statistics.median(s[i] for s in runs) for i in range(3))
        print(f"{name:<32}{ready:>9.2f}{cpu:>8.2f}{rss:>8.0f}{rss / base[2]:>7.1f}")


if __name__ == "__main__":
    main()
