"""``aiops warm-cache``: compile every compiled metric detector once, so the daemon starts fast.

The compiled detectors (``default``, ``bocpd``, ``knn``, ``robust_zscore``, ...) are numba code: compiled on
first use, ~10 s each, then loaded from numba's disk cache in a fraction of a second. Run at image build
(deploy/docker) or before the service starts (deploy/systemd ``ExecStartPre``), this moves that compile
out of the daemon's start, so it is ready in about two seconds.
"""

from __future__ import annotations

import inspect
import os
import time
from pathlib import Path
from typing import Any

import click

from aiops import plugins
from aiops.errors import AiopsError
from aiops.plugins import Detector


@click.command("warm-cache")
@click.option("--detector", "names", multiple=True, help="Only this detector (repeatable; default: all).")
def warm_cache(names: tuple[str, ...]) -> None:
    """Compile the compiled detectors into numba's disk cache (NUMBA_CACHE_DIR if set)."""
    available = plugins.available(plugins.DETECTORS)
    unknown = sorted(set(names) - set(available))
    if unknown:
        raise AiopsError(f"unknown detector(s): {', '.join(unknown)} (see `aiops plugins`)")
    compiled = [name for name in names or sorted(available) if _load(name).warm_up is not Detector.warm_up]
    if not compiled:
        click.echo("no compiled detectors installed (aiops-detectors): nothing to warm")
        return
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
    click.echo(f"{warmed} detector(s) warmed; cache: {os.environ.get('NUMBA_CACHE_DIR') or 'package __pycache__'}")


def _load(name: str) -> Any:
    return plugins.load(plugins.DETECTORS, name)


def _cache_place(detector_class: type[Any]) -> Path:
    """Where numba keeps the compiled code: ``NUMBA_CACHE_DIR``, else beside the detector's package.

    Asked of numba and of the installed class, not of the detectors' package, which the core never imports.
    """
    from numba.core import config  # a compiled detector is installed, so numba is

    configured = str(getattr(config, "CACHE_DIR", "") or "")
    return Path(configured) if configured else Path(inspect.getfile(detector_class)).parent / "__pycache__"


def _writable(place: Path) -> bool:
    probe = place if place.exists() else place.parent
    return os.access(probe, os.W_OK | os.X_OK)
