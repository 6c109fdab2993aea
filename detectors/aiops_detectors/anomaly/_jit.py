"""numba compilation for the metric detectors' hot loops, with the on-disk cache only where it can work."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from numba import njit as _numba_njit

F = TypeVar("F", bound=Callable[..., Any])


def cache_writable(module_file: str = __file__) -> bool:
    """Whether numba can keep compiled code on disk: in ``NUMBA_CACHE_DIR`` or next to this module.

    Compiling the kernel takes ~10 s, so it is cached; but under a read-only install (a container running
    as another user, systemd's ``ProtectSystem=strict``) numba would refuse to import a ``cache=True``
    function at all. Then it compiles in memory at each start instead (deploy/ sets NUMBA_CACHE_DIR).
    """
    configured = os.environ.get("NUMBA_CACHE_DIR")
    place = Path(configured) if configured else Path(module_file).parent / "__pycache__"
    probe = place if place.exists() else place.parent
    return os.access(probe, os.W_OK | os.X_OK)


_CACHE = cache_writable()


def njit(fn: F) -> F:
    """``numba.njit`` (no fast-math: results are IEEE-exact and the same on every machine)."""
    return cast(F, _numba_njit(cache=_CACHE)(fn))
