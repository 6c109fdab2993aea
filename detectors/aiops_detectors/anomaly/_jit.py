"""Compiled code for the metric detectors' hot loops: the ahead-of-time build when there is one for these
sources (``_aot``: numba and LLVM are then never imported), else numba's JIT, with its on-disk cache only
where it can work."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

from aiops_detectors.anomaly import _aot

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def _without_scipy() -> Iterator[None]:
    """Hide SciPy while numba imports and sets up its CPU target.

    Why: numba imports SciPy, when it is installed, only to find BLAS/LAPACK for ``np.linalg`` inside
    compiled code, which no kernel here uses; that import costs a daemon running ``default`` ~30 MB of
    resident memory and a tenth of a second, for nothing. Plugins that do need SciPy (drift tests) import
    it themselves later, unaffected. If SciPy or numba is already loaded, nothing is hidden.
    """
    if "scipy" in sys.modules or "numba" in sys.modules:
        yield
        return
    sys.modules["scipy"] = None  # type: ignore[assignment]  # makes ``import scipy`` raise ImportError
    try:
        yield
    finally:
        if sys.modules.get("scipy", 0) is None:
            del sys.modules["scipy"]


_COMPILED = _aot.load()  # the ahead-of-time build of these very sources, or None

if _COMPILED is None:
    with _without_scipy():
        from numba import njit as _numba_njit
        from numba.core.registry import cpu_target

        cpu_target.target_context.refresh()  # loads numba's implementations (and would import SciPy) now


def cache_writable(module_file: str = __file__) -> bool:
    """Whether numba can keep compiled code on disk: in ``NUMBA_CACHE_DIR`` or next to this module.

    Compiling the kernel takes ~10 s, so it is cached; but under a read-only install (a container running
    as another user, systemd's ``ProtectSystem=strict``) numba would refuse to import a ``cache=True``
    function at all. Then it compiles in memory at each start instead (deploy/ sets NUMBA_CACHE_DIR).
    """
    from numba.core import config  # numba's own reading of NUMBA_CACHE_DIR, so both agree on the place

    configured = str(getattr(config, "CACHE_DIR", "") or "")  # set from the environment when numba loads
    place = Path(configured) if configured else Path(module_file).parent / "__pycache__"
    probe = place if place.exists() else place.parent
    return os.access(probe, os.W_OK | os.X_OK)


_CACHE = _COMPILED is None and cache_writable()


def njit(fn: F) -> F:
    """``numba.njit`` (no fast-math: results are IEEE-exact and the same on every machine), releasing the GIL
    while compiled code runs: a tick over thousands of series spends most of its time in these kernels, and
    the HTTP threads (an ingest request, a probe) must not wait for it. Safe because a bank's arrays are
    only ever used by the one thread running its check (a timed-out run's late thread gets fresh plugin
    instances, never the live ones).

    With an ahead-of-time build loaded, an entry point is its compiled export (the same arithmetic, the GIL
    released too) and any other kernel function stays plain Python: only the exports run in the daemon."""
    if _COMPILED is not None:
        return cast(F, getattr(_COMPILED, _aot.symbol(fn), fn))
    return cast(F, _numba_njit(cache=_CACHE, nogil=True)(fn))


def _no_prefetch(array: Any, index: int) -> None:
    """What :func:`prefetch` is outside compiled code: nothing (a hint has no effect on any result)."""


def _compiled_prefetch() -> Callable[[Any, int], None]:
    """``prefetch(array, index)`` inside compiled code: LLVM's ``llvm.prefetch`` of the cache line holding
    ``array[index]`` of a contiguous array (a read, kept in every cache level). A hint only: it changes no
    value, and an address outside the array is harmless (a prefetch never faults)."""
    from llvmlite import ir
    from numba.core import types
    from numba.core.extending import intrinsic

    i32 = ir.IntType(32)
    bytes_ptr = ir.IntType(8).as_pointer()
    hint = ir.FunctionType(ir.VoidType(), [bytes_ptr, i32, i32, i32])

    @intrinsic
    def prefetch(typingctx: Any, array: Any, index: Any) -> Any:
        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            data = context.make_array(signature.args[0])(context, builder, args[0]).data
            fn = builder.module.globals.get("llvm.prefetch.p0") or ir.Function(builder.module, hint, "llvm.prefetch.p0")
            address = builder.bitcast(builder.gep(data, [args[1]]), bytes_ptr)
            builder.call(fn, [address, i32(0), i32(3), i32(1)])  # read, keep in all levels, data cache
            return context.get_dummy_value()

        return types.void(array, types.intp), codegen

    return cast(Callable[[Any, int], None], prefetch)


prefetch = _no_prefetch if _COMPILED is not None else _compiled_prefetch()
