"""``aiops warm-cache``: compile every compiled metric detector once, so the daemon starts fast and light.

The compiled detectors (``default``, ``bocpd``, ``knn``, ``robust_zscore``, ...) are numba code. First, each
package registered under the ``aiops.ahead_of_time`` entry points (the bundled detectors' is
``aiops_detectors.anomaly._aot``) compiles its kernels ahead of time into one extension module in the
cache directory: a daemon then loads that machine code and never imports numba or LLVM (~100 MB and most
of a second less at start). Where that build cannot be made (it needs a C compiler), the detectors are
compiled by numba's JIT into its disk cache instead, ~10 s each, loaded at start in a fraction of a second.
Run at image build (deploy/docker) or before the service starts (deploy/systemd ``ExecStartPre``), this moves
all compiling out of the daemon's start: a no-op when the cache is warm.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click

from aiops import plugins
from aiops.errors import AiopsError
from aiops.plugins import Detector

AHEAD_OF_TIME = "aiops.ahead_of_time"  # entry points naming a module that `python -m` builds and prints
BUILD_TIMEOUT = 1800.0  # seconds; compiling every kernel takes about a minute on a busy two-core machine


@click.command("warm-cache")
@click.option("--detector", "names", multiple=True, help="Only this detector (repeatable; default: all).")
def warm_cache(names: tuple[str, ...]) -> None:
    """Compile the detectors' kernels ahead of time, else into numba's disk cache (NUMBA_CACHE_DIR if set)."""
    available = plugins.available(plugins.DETECTORS)
    unknown = sorted(set(names) - set(available))
    if unknown:
        raise AiopsError(f"unknown detector(s): {', '.join(unknown)} (see `aiops plugins`)")
    _compile_ahead()  # before any detector is imported here, so that they load what it built
    compiled = [name for name in names or sorted(available) if _load(name).warm_up is not Detector.warm_up]
    if not compiled:
        click.echo("no compiled detectors installed (aiops-detectors): nothing to warm")
        return
    jit = "numba" in sys.modules  # the detectors' modules import numba only when no build serves them
    if jit:
        place = _cache_place(_load(compiled[0]))
        if not _writable(place):
            where = os.environ.get("NUMBA_CACHE_DIR") or "next to the installed detectors"
            raise AiopsError(f"numba cannot write its cache ({where}); set NUMBA_CACHE_DIR to a writable directory")
    warmed = 0
    for name in compiled:
        try:
            detector = plugins.build(plugins.DETECTORS, name)
        except Exception as exc:  # needs parameters without defaults: not one of the compiled ones
            click.echo(f"{name}: skipped ({exc.__class__.__name__})")
            continue
        started = time.monotonic()
        detector.warm_up()
        warmed += 1
        click.echo(f"{name}: ready in {time.monotonic() - started:.2f}s")
    if jit:
        cache = os.environ.get("NUMBA_CACHE_DIR") or "package __pycache__"
        click.echo(f"{warmed} detector(s) warmed; numba's cache: {cache}")
    else:
        click.echo(f"{warmed} detector(s) warmed; they run the ahead-of-time build (numba is not loaded)")


def _compile_ahead() -> None:
    """Run each registered ahead-of-time build in a fresh interpreter: the build needs the kernels as numba
    functions, which this process must not import (it would then not load the build it made), and the
    compiler's memory goes with the child. A failed build is reported and the JIT cache is warmed instead."""
    for entry in entry_points(group=AHEAD_OF_TIME):
        started = time.monotonic()
        try:
            done = subprocess.run(
                [sys.executable, "-m", entry.module],
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            click.echo(f"{entry.name}: ahead-of-time build timed out after {BUILD_TIMEOUT:.0f}s", err=True)
            continue
        if done.returncode == 0:
            built = (done.stdout.strip().splitlines() or ["?"])[-1]
            click.echo(f"{entry.name}: compiled ahead of time in {time.monotonic() - started:.1f}s: {built}")
        else:
            reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
            click.echo(
                f"{entry.name}: no ahead-of-time build ({reason}); its detectors use numba's JIT cache", err=True
            )


def _load(name: str) -> Any:
    return plugins.load(plugins.DETECTORS, name)


def _cache_place(detector_class: type[Any]) -> Path:
    """Where numba keeps the compiled code: ``NUMBA_CACHE_DIR``, else beside the detector's package.

    Asked of numba and of the installed class, not of the detectors' package, which the core never imports.
    """
    from numba.core import config  # the detectors imported numba: it is installed

    configured = str(getattr(config, "CACHE_DIR", "") or "")
    return Path(configured) if configured else Path(inspect.getfile(detector_class)).parent / "__pycache__"


def _writable(place: Path) -> bool:
    probe = place if place.exists() else place.parent
    return os.access(probe, os.W_OK | os.X_OK)
