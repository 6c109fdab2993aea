"""The metric detectors' kernels compiled ahead of time into one extension module, so a daemon loads machine
code without loading a compiler.

Why: numba and LLVM, imported to JIT-compile the kernels or to load them from numba's cache, are about
100 MB of a daemon's resident memory and a good part of its start, for code that never changes between
starts. ``aiops warm-cache`` (deploy/ runs it at image build and before the service starts) calls
:func:`build`, which compiles the kernels' entry points with ``numba.pycc`` into
``_aiops_kernels-<fingerprint>.<ext>`` in the cache directory; ``_jit.njit`` then hands the detectors those
functions and numba is never imported. With no build (no C compiler where warm-cache ran, a changed kernel,
``AIOPS_KERNELS=jit``), ``_jit.njit`` compiles with numba as before.

Why the fingerprint is in the file name: the build must match the kernels' source exactly, or a detector
would score with old arithmetic. It hashes the package's private modules (the kernels, their shared parts,
this file with its signatures) and the numpy and numba versions, so a changed kernel or an upgrade finds
no build under its name and falls back to the JIT until ``warm-cache`` runs again.

Why these signatures: pycc compiles one specialisation per export, and its entry points check an array
argument's item size only (not its dtype nor its layout, as numba's dispatcher does). A scorer's state and
parameter vectors and a bank's blocks, which the hot loops work on, are declared contiguous (``[::1]``):
the kernels' owners always create them so (their own arrays, or rows of a C-ordered bank), and the
contiguous code is 5-15 % faster than the any-layout code on ``bocpd`` and ``robust_zscore``. The series,
timestamps, row indices and outputs, which callers hand in, take any layout (``[:]``), so a strided view is
read right. The callers pass ``float64`` arrays and ``int64`` row indices, as the JIT's cached code also
expects. The target CPU is pycc's generic one: the build is portable between machines (an image built on
one host runs on another) and, with no fast-math, as fast as the JIT's host-tuned code on these scalar
loops (measured: tuning the build for the host gained nothing; benchmarks/RESULTS.md). The exports release
the GIL while they run, as the ``nogil`` JIT kernels do, so ingest requests are not held up by a tick.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

MODULE = "_aiops_kernels"
MODE_ENV = "AIOPS_KERNELS"  # "jit": ignore any ahead-of-time build (comparisons, debugging)
_RUN = "void(f8[::1], f8[::1], f8[:], f8[:])"
_STEP_ROWS = "void(f8[:, ::1], f8[::1], i8[:], f8[:], f8[:])"
_BATCH = "f8[::1](f8[::1], f8, f8, f8, i8, f8[:], f8[:])"

#: The kernels' entry points called from Python, by kernel module, with their one compiled signature.
#: Helpers they call are compiled into them; called from Python (tests), a helper runs as plain Python.
EXPORTS: dict[str, dict[str, str]] = {
    "_default_kernel": {"step": "f8(f8[::1], f8[::1], f8, f8)", "run": _RUN, "step_rows": _STEP_ROWS},
    "_robust_kernel": {"step": "f8(f8[::1], f8[::1], f8)", "run": _RUN},
    "_bocpd_kernel": {
        "step": "f8(f8[::1], f8[::1], f8)",
        "step_runs": "f8(f8[::1], f8[::1], f8)",
        "run": _RUN,
        "step_rows": _STEP_ROWS,
    },
    "_batch": {"ewma_run": _BATCH, "cusum_run": _BATCH},
}


def symbol(fn: Callable[..., Any]) -> str:
    """The export's name in the module: ``<kernel module>__<function>``."""
    return f"{fn.__module__.rsplit('.', 1)[-1]}__{fn.__name__}"


def cache_dir() -> Path:
    """``NUMBA_CACHE_DIR`` when set (deploy/ sets it: the install may be read-only), as numba's own cache;
    else the package's ``__pycache__``, where numba keeps it too."""
    configured = os.environ.get("NUMBA_CACHE_DIR", "")
    return Path(configured) if configured else Path(__file__).parent / "__pycache__"


def fingerprint() -> str:
    """What the build depends on: the package's private modules, numpy's and numba's versions."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("_*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    try:
        numba_version = version("numba")
    except PackageNotFoundError:
        numba_version = "none"
    digest.update(f"numpy {np.__version__}; numba {numba_version}".encode())
    return digest.hexdigest()[:16]


def module_path(place: Path | None = None) -> Path:
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    return (place or cache_dir()) / f"{MODULE}-{fingerprint()}{suffix}"


def load(place: Path | None = None) -> ModuleType | None:
    """The build for the current sources, or None (not built, ``AIOPS_KERNELS=jit``, or it fails to load:
    then the JIT still works)."""
    if os.environ.get(MODE_ENV, "").strip().lower() == "jit":
        return None
    path = module_path(place)
    if not path.is_file():
        return None
    return load_file(path)


def load_file(path: Path) -> ModuleType | None:
    spec = importlib.util.spec_from_file_location(MODULE, path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError:  # damaged, or built for another platform
        return None
    return module


def build(place: Path | None = None) -> Path:
    """Compile every export into the cache directory (a no-op when the current build is there); its path.

    Runs in a process of its own (``python -m aiops_detectors.anomaly._aot``): it must see the kernels as
    numba functions, and pycc with LLVM take a few hundred MB while they work. Needs a C compiler.
    """
    target = module_path(place)
    if target.is_file():
        return target
    os.environ[MODE_ENV] = "jit"  # compile from the numba functions, never from an older build
    from numba.core.errors import NumbaPendingDeprecationWarning
    from numba.pycc import compiler
    from numba.pycc.cc import CC

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".aiops-kernels-") as tmp:
        cc = CC(MODULE)  # type: ignore[no-untyped-call]
        cc.output_dir = tmp
        cc.verbose = False
        for module_name, functions in EXPORTS.items():
            kernels = importlib.import_module(f"{__package__}.{module_name}")
            for name, signature in functions.items():
                dispatcher = getattr(kernels, name)
                if not hasattr(dispatcher, "py_func"):
                    raise RuntimeError(f"{module_name}.{name} is not a numba function in this process")
                cc.export(symbol(dispatcher.py_func), signature)(dispatcher.py_func)  # type: ignore[no-untyped-call]
        with warnings.catch_warnings(), _releasing_gil(compiler):
            warnings.simplefilter("ignore", NumbaPendingDeprecationWarning)
            cc.compile()
        built = next(Path(tmp).glob(f"{MODULE}*"))
        os.replace(built, target)  # atomic: a daemon starting meanwhile sees no build or the whole one
    for stale in target.parent.glob(f"{MODULE}-*"):
        if stale != target:
            stale.unlink(missing_ok=True)
    return target


@contextmanager
def _releasing_gil(compiler: Any) -> Iterator[None]:
    """Make pycc's entry points release the GIL, as ``njit(nogil=True)`` does.

    pycc compiles each export with a fresh ``Flags()`` whose ``release_gil`` it never sets; its entry point
    is numba's usual CPython wrapper, which releases the GIL around the native call when that flag is set.
    """
    original = compiler.Flags

    class Flags(original):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.release_gil = True

    compiler.Flags = Flags
    try:
        yield
    finally:
        compiler.Flags = original


def main() -> int:
    """``python -m aiops_detectors.anomaly._aot``: build, print the module's path; else one line of why."""
    try:
        print(build())
    except Exception as exc:  # no C compiler, an unwritable cache: warm-cache reports it and uses the JIT
        lines = str(exc).strip().splitlines()
        print(f"{type(exc).__name__}: {lines[0] if lines else 'failed'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
