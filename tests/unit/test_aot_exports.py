"""Every compiled kernel function that detector code calls is in the ahead-of-time build's export list.

Why: with the build loaded, a kernel function that is not exported stays plain Python (correct, but a
hundred times slower), and nothing else would notice: a new entry point added to a kernel must be declared
in ``anomaly/_aot.py`` with its signature. Read from the sources (no numba needed, whichever way this
process loaded the kernels).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from aiops_detectors.anomaly import _aot

PACKAGE = Path(_aot.__file__).parents[1]
ANOMALY = Path(_aot.__file__).parent


def _compiled_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and any(isinstance(d, ast.Name) and d.id == "njit" for d in node.decorator_list)
    ]


def _kernel_modules() -> dict[str, list[str]]:
    found = {path.stem: _compiled_functions(path) for path in sorted(ANOMALY.glob("_*.py"))}
    return {name: functions for name, functions in found.items() if functions}


def _calls(path: Path, kernels: dict[str, list[str]]) -> set[tuple[str, str]]:
    """(kernel module, function) pairs a detector module calls or hands on: through the module's alias
    (``from aiops_detectors.anomaly import _default_kernel as kernel``), an imported name, or a scorer's
    generic ``kernel`` attribute (``self.kernel.step(...)`` in ``_bank``: any kernel with that function)."""
    text = path.read_text(encoding="utf-8")
    aliases: dict[str, list[str]] = {"kernel": list(kernels)}
    calls: set[tuple[str, str]] = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom) and node.module == "aiops_detectors.anomaly":
            for alias in node.names:
                if alias.name in kernels:
                    aliases.setdefault(alias.asname or alias.name, []).append(alias.name)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").rsplit(".", 1)[-1] in kernels:
            module = (node.module or "").rsplit(".", 1)[-1]
            calls |= {(module, alias.name) for alias in node.names if alias.name in kernels[module]}
    for prefix, modules in aliases.items():
        for name in re.findall(rf"\b{prefix}\.(\w+)", text):
            calls |= {(module, name) for module in modules if name in kernels[module]}
    return calls


def test_every_kernel_function_called_by_a_detector_is_exported() -> None:
    kernels = _kernel_modules()
    assert {"_default_kernel", "_bocpd_kernel", "_robust_kernel", "_batch"} <= set(kernels)
    calls = set().union(
        *(
            _calls(path, kernels)
            for path in sorted(PACKAGE.rglob("*.py"))
            if not (path.parent == ANOMALY and path.stem in kernels)
        )
    )
    assert ("_default_kernel", "step_rows") in calls and ("_batch", "ewma_run") in calls  # the scan sees calls
    missing = sorted(f"{module}.{name}" for module, name in calls if name not in _aot.EXPORTS.get(module, {}))
    assert missing == [], f"called from detector code but not compiled ahead of time: {missing}"


def test_every_export_names_a_compiled_function() -> None:
    kernels = _kernel_modules()
    stale = [
        f"{module}.{name}"
        for module, functions in _aot.EXPORTS.items()
        for name in functions
        if name not in kernels.get(module, [])
    ]
    assert stale == []
