"""The layout's rules, checked on the import graph so that a change that breaks one fails here, by name.

Read as a maintainer would, the rules are:

- **No cycles between packages.** A package is a first-level sub-package or module of ``aiops`` (``aiops.engine``,
  ``aiops.store``, ``aiops.config``, ``aiops.cli``, ...) or a whole plugin package (``aiops_detectors``,
  ``aiops_remediations``). With a cycle, neither side can be understood, tested or changed alone.
- **Plugins stand on the public core only.** The core never imports a plugin package (it finds plugins through
  entry points, as it finds a third-party one); a plugin package never imports another (each is
  installable alone, as a third-party plugin is), and from ``aiops`` it imports only the modules listed in
  :data:`PUBLIC` below: the value types, errors and core services a plugin is promised. The built-in plugins
  of the core (``aiops.sources``, ``aiops.notifiers``) follow the same rule, so they cannot reach into the
  engine or the store either.
- **The environment is read in one place.** ``os.environ``/``os.getenv`` are read by config loading
  (``aiops/config/``) and the command line (``aiops/cli.py``, ``aiops/commands/``, and the ``python -m``
  entry points listed in :data:`ENTRY_POINTS`); everything else gets its values passed in, so an embedded
  daemon or a test is never configured by whatever the process happens to inherit.

Imports are read with :mod:`ast`, every one of them: module level, inside functions and under
``TYPE_CHECKING`` (a type-only import is still a dependency a reader has to follow). Each violation is
printed as ``module: reason``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROOTS = {
    "aiops": REPO / "aiops",
    "aiops_detectors": REPO / "detectors" / "aiops_detectors",
    "aiops_remediations": REPO / "remediations" / "aiops_remediations",
}
PLUGIN_PACKAGES = ("aiops_detectors", "aiops_remediations")
#: Core sub-packages that are plugins themselves (found by the same entry points) and obey the same rule.
BUILTIN_PLUGIN_PACKAGES = ("aiops.sources", "aiops.notifiers")

#: What a plugin may import from ``aiops`` (a module, and everything under it when it is a package; the
#: package ``aiops`` itself only for ``__version__``).
PUBLIC = frozenset(
    {
        "aiops.types",  # Frame, Finding, Plan, Outcome, ActionContext, ...: the values that cross stages
        "aiops.errors",  # the exception hierarchy
        "aiops.durations",  # the Duration parameter type
        "aiops.matchers",  # the one label-matcher grammar
        "aiops.http_outcome",  # the one HTTP answer classifier
        "aiops.messages",  # what a notifier is given to send
        "aiops.plugins",  # base classes, the loader, the context a plugin is started with
        "aiops.registry",  # the model registry service
        "aiops.compute",  # executors for heavy jobs (training)
        "aiops.testing",  # fakes and the contract suite
        "aiops.redact",  # hiding secrets in what a plugin shows
        "aiops.text",  # shared text helpers (templating, truncation)
        "aiops.clock",  # the injectable clock
        "aiops.detection",  # the scorer adapter and drift result shared by detectors
        "aiops.signing",  # HMAC request signing (webhooks)
        "aiops.signed_http",  # the one signed-JSON HTTP request (webhook notifier and remediation)
        "aiops.replay",  # what a source's history() hook returns, for backtests
        "aiops.pushed",  # pushed telemetry rows and the read view of them a source is given
        "aiops.events",  # another store's pushed telemetry, read-only (a push source's store_url)
        "aiops.config.environment",  # values a config names in the environment (``*_env``, ${VAR})
        "aiops.table_format",  # a table file's format from its name (drift detectors and `aiops drift`)
    }
)

#: Modules run as ``python -m MODULE``: a command line of their own, so reading the environment is theirs.
ENTRY_POINTS = {
    "aiops.__main__": "`python -m aiops`",
    "aiops.compute.job": "`python -m aiops.compute.job`: Ray and Kubernetes hand the job its input as env vars",
    "aiops_detectors.anomaly._aot": "`python -m aiops_detectors.anomaly._aot` (run by warm-cache) builds the "
    "kernels; it and their import read NUMBA_CACHE_DIR as numba does (the build stands in for numba's cache, "
    "which numba places from the environment) and AIOPS_KERNELS (JIT only), before any config exists",
}

#: Process-wide context that the plugin context replaces (environment variables the daemon sets for plugins,
#: the store bound for the push sources); the plugin context work removes each entry. Exempt from the
#: environment and the public-module checks until then.
PENDING_CONTEXT: dict[str, str] = {}


@dataclass(frozen=True)
class Import:
    """One import statement's target inside the scanned packages (resolved to a module that exists)."""

    source: str
    target: str
    line: int


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool

    def tree(self) -> ast.Module:
        return ast.parse(self.path.read_text(encoding="utf-8"), str(self.path))


def scan() -> dict[str, Module]:
    found: dict[str, Module] = {}
    for top, root in ROOTS.items():
        for path in sorted(root.rglob("*.py")):
            parts = [top, *path.relative_to(root).with_suffix("").parts]
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            found[".".join(parts)] = Module(".".join(parts), path, is_package)
    return found


MODULES = scan()
TREES = {name: module.tree() for name, module in MODULES.items()}


def _known(name: str) -> str | None:
    """The longest prefix of a dotted name that is a scanned module (None: outside the scanned packages)."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in MODULES:
            return ".".join(parts)
        parts.pop()
    return None


def imports(module: Module) -> Iterator[Import]:
    for node in ast.walk(TREES[module.name]):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _known(alias.name)
                if target is not None:
                    yield Import(module.name, target, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:  # `from aiops import faults` imports the module aiops.faults
                target = _known(f"{base}.{alias.name}") or _known(base)
                if target is not None:
                    yield Import(module.name, target, node.lineno)


IMPORTS = sorted({imp for module in MODULES.values() for imp in imports(module)}, key=lambda i: (i.source, i.line))


def package_of(module: str) -> str:
    """``aiops.engine.silences`` -> ``aiops.engine``; ``aiops_detectors.drift.ks`` -> ``aiops_detectors``."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "aiops" else parts[0]


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _components(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components (Tarjan); a component of two or more packages is a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def cycle_violations() -> list[str]:
    graph: dict[str, set[str]] = {}
    for imp in IMPORTS:
        a, b = package_of(imp.source), package_of(imp.target)
        if a != b:
            graph.setdefault(a, set()).add(b)
    problems = []
    for component in _components(graph):
        if len(component) < 2:
            continue
        named = ", ".join(sorted(component))
        for imp in IMPORTS:
            a, b = package_of(imp.source), package_of(imp.target)
            if a != b and a in component and b in component:
                problems.append(f"{imp.source}: imports {imp.target} (line {imp.line}), a package cycle among {named}")
    return problems


def _public(module: str) -> bool:
    """In :data:`PUBLIC` (or under a public package), and no part of its name private (``_``)."""
    if any(part.startswith("_") for part in module.split(".")):
        return False
    return module == "aiops" or any(_within(module, public) for public in PUBLIC)


def boundary_violations() -> list[str]:
    problems = []
    for imp in IMPORTS:
        if package_of(imp.target) in PLUGIN_PACKAGES and imp.source.split(".")[0] == "aiops":
            problems.append(f"{imp.source}: the core imports plugin package module {imp.target} (line {imp.line})")
            continue
        owner = next((p for p in (*PLUGIN_PACKAGES, *BUILTIN_PLUGIN_PACKAGES) if _within(imp.source, p)), None)
        if owner is None or _within(imp.target, owner) or imp.source in PENDING_CONTEXT:
            continue
        if package_of(imp.target) in PLUGIN_PACKAGES:
            problems.append(f"{imp.source}: imports plugin package module {imp.target} (line {imp.line})")
        elif not _public(imp.target):
            problems.append(f"{imp.source}: imports {imp.target}, not a public aiops module (line {imp.line})")
    return problems


def _env_uses(tree: ast.Module) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
            and node.attr in ("environ", "environb", "getenv", "putenv", "unsetenv")
        ):
            yield node.lineno, f"os.{node.attr}"
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            for alias in node.names:
                if alias.name in ("environ", "environb", "getenv"):
                    yield node.lineno, f"from os import {alias.name}"


def _may_read_environment(module: str) -> bool:
    return (
        _within(module, "aiops.config")
        or _within(module, "aiops.commands")
        or module == "aiops.cli"
        or module in ENTRY_POINTS
        or module in PENDING_CONTEXT
    )


def environment_violations() -> list[str]:
    return [
        f"{name}: uses {what} (line {line}) outside config loading and the command line"
        for name in MODULES
        if not _may_read_environment(name)
        for line, what in _env_uses(TREES[name])
    ]


def _report(problems: list[str]) -> str:
    return f"{len(problems)} violation(s):\n" + "\n".join(problems)


def test_the_scan_sees_every_package_and_resolves_imports() -> None:
    """Guards the checks below against passing vacuously (a moved root, a resolver that finds nothing)."""
    assert {"aiops.engine", "aiops.config", "aiops_detectors", "aiops_remediations"} <= {package_of(m) for m in MODULES}
    assert any(imp.source == "aiops.registry.fs" and imp.target == "aiops.faults" for imp in IMPORTS)
    drift = {imp.target for imp in IMPORTS if imp.source == "aiops_detectors.drift.base"}
    assert "aiops_detectors.drift._reference" in drift, "relative imports must resolve"


def test_no_import_cycle_between_packages() -> None:
    problems = cycle_violations()
    print("\n".join(problems))
    assert not problems, _report(problems)


def test_plugins_import_only_public_aiops_modules_and_the_core_no_plugin() -> None:
    problems = boundary_violations()
    print("\n".join(problems))
    assert not problems, _report(problems)


def test_environment_is_read_only_by_config_loading_and_the_command_line() -> None:
    problems = environment_violations()
    print("\n".join(problems))
    assert not problems, _report(problems)


def test_the_pending_list_holds_only_modules_that_still_need_it() -> None:
    """An entry whose module no longer touches the environment is stale: remove it, so the list only shrinks."""
    stale = [name for name in PENDING_CONTEXT if name not in MODULES or not list(_env_uses(TREES[name]))]
    assert not stale, f"PENDING_CONTEXT entries no longer needed: {stale}"


def test_each_rule_catches_a_planted_violation() -> None:
    """The checks can fail: a cycle, a private or internal import and an environment read, planted in samples."""
    assert {"a", "b"} in _components({"a": {"b"}, "b": {"a"}, "c": {"a"}})
    assert all(len(c) == 1 for c in _components({"a": {"b"}, "b": {"c"}}))
    assert not _public("aiops.engine.messages") and not _public("aiops.store.store")
    assert not _public("aiops.registry._backend") and _public("aiops.registry.fs") and _public("aiops")
    tree = ast.parse("import os\nfrom os import getenv\n\ndef f():\n    return os.environ.get('A'), os.getenv('B')\n")
    assert {what for _, what in _env_uses(tree)} == {"from os import getenv", "os.environ", "os.getenv"}
