"""YAML with line numbers and ``${VAR}`` / ``${VAR:-default}`` expansion.

Pydantic reports errors by path (``checks.0.source.path``); a person wants ``aiops.yaml:12``. So the YAML is
composed into nodes once, and while building plain data we remember the line of every path. Environment
variables are expanded per scalar *after* parsing, so a value can never inject YAML structure.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\$")


@dataclass
class LoadedYaml:
    """Plain data plus where every path came from, and the problems found while building it."""

    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    problems: list[tuple[Path, str]] = field(default_factory=list)

    def line_of(self, path: Path) -> int:
        """Line of the deepest known prefix of ``path`` (a missing field points at its parent)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return 1


def expand_env(text: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
    """Expand ``${VAR}``/``${VAR:-default}``; ``$$`` is a literal ``$``. Returns the text and unset names.

    >>> expand_env("${HOST:-localhost}:${PORT}", {"PORT": "80"})
    ('localhost:80', [])
    >>> expand_env("${NOPE}", {})
    ('', ['NOPE'])
    """
    missing: list[str] = []

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        value = env.get(name)
        if value is None or (value == "" and default is not None):
            if default is None:
                missing.append(name)
                return ""
            return default
        return value

    return _VAR.sub(sub, text), missing


def load_yaml(text: str, env: Mapping[str, str] | None = None) -> LoadedYaml:
    """Parse YAML text into plain data with a path -> line map; raises yaml.YAMLError on bad syntax."""
    env = os.environ if env is None else env
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    result = LoadedYaml(data=None)
    if node is None:
        result.data = {}
        return result
    result.data = _build(node, (), result, env)
    return result


def _build(node: yaml.Node, path: Path, out: LoadedYaml, env: Mapping[str, str]) -> Any:
    out.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(_scalar(key_node))
            if key == "<<":
                out.problems.append((path, "YAML merge keys (<<) are not supported; repeat the values"))
                continue
            if key in mapping:
                out.lines[(*path, key)] = key_node.start_mark.line + 1
                out.problems.append(((*path, key), "duplicate key"))
                continue
            mapping[key] = _build(value_node, (*path, key), out, env)
            out.lines[(*path, key)] = key_node.start_mark.line + 1
        return mapping
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), out, env) for i, item in enumerate(node.value)]
    assert isinstance(node, yaml.ScalarNode)
    value = _scalar(node)
    if isinstance(value, str) and "$" in value:
        expanded, missing = expand_env(value, env)
        for name in missing:
            out.problems.append((path, f"environment variable {name} is not set (use ${{{name}:-default}})"))
        return expanded
    return value


def _scalar(node: yaml.Node) -> Any:
    """Resolve one scalar with YAML's safe rules (ints, floats, bools, nulls, timestamps)."""
    return yaml.SafeLoader("").construct_object(node, deep=True)


def format_path(path: Path) -> str:
    """``('checks', 0, 'source', 'path')`` -> ``checks[0].source.path``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"
