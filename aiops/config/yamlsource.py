"""YAML with line numbers, ``${VAR}`` / ``${VAR:-default}`` expansion, and limits that hostile input cannot pass.

Pydantic reports errors by path (``checks.0.source.path``); a person wants ``aiops.yaml:12``. So the YAML is
composed into nodes once, and while building plain data we remember the line of every path. Environment
variables are expanded per scalar *after* parsing, so a value can never inject YAML structure.

Why limits: a config file is pushed by config management and read again on every reload, so one bad file
must not hang or exhaust the daemon. A 1.5 KB "billion laughs" (aliases of aliases) expands to gigabytes, a
recursive alias (``a: &a [*a]``) never ends, deep nesting exhausts the stack, and a 5 000-digit integer
trips Python's own conversion limit. The composer below counts every node *as it would be expanded*
(an alias costs the size of what it points at), refuses recursive aliases and deep nesting, and the text
and integers have size caps, so the work done is bounded by :data:`LIMITS` before any data is built.
Every refusal is a :class:`yaml.MarkedYAMLError` with the line and column where it happened.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, CollectionStartEvent
from yaml.resolver import Resolver

Path = tuple[str | int, ...]

# A default stops at ``$`` as well as ``}``: a failed match then scans only to the next ``$``, so expansion
# stays linear (``[^}]*`` rescanned the rest of the text from every ``${x:-`` and 40 KB took seconds).
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}$]*))?\}|\$\$")
_INT_TAG = "tag:yaml.org,2002:int"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"


@dataclass(frozen=True)
class YamlLimits:
    """What one config document may cost. Far above any real config (the shipped examples use < 600
    nodes, depth 7, no aliases), far below what would hold the daemon for a second or 100 MB."""

    max_bytes: int = 256 * 1024
    max_nodes: int = 50_000  # after alias expansion: what building plain data will visit
    max_depth: int = 64  # nesting after alias expansion
    max_aliases: int = 1_000
    max_int_digits: int = 100


LIMITS = YamlLimits()


class InputRejected(yaml.MarkedYAMLError):
    """The input breaks a limit or is not text; carries the line and column of the offending place."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem=problem, problem_mark=mark)


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


def decode_utf8(data: bytes, name: str = "<config>", limits: YamlLimits = LIMITS) -> str:
    """Bytes of a config file to text; refuses a file over the size cap or one that is not UTF-8, naming
    the line and column of the first bad byte (an editor or ``iconv`` can then find it).

    >>> decode_utf8(b"a: 1\\nb: caf\\xe9\\n")
    Traceback (most recent call last):
    ...
    aiops.config.yamlsource.InputRejected: not UTF-8: byte 0xe9 cannot be decoded (save the file as UTF-8)
      in "<config>", line 2, column 7
    """
    if len(data) > limits.max_bytes:
        raise InputRejected(f"larger than {limits.max_bytes} bytes, the most a config may be", _mark(name, b"", 0))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8: byte 0x{data[exc.start]:02x} cannot be decoded (save the file as UTF-8)"
        raise InputRejected(problem, _mark(name, data, exc.start)) from None


def load_yaml(text: str, env: Mapping[str, str] | None = None, limits: YamlLimits = LIMITS) -> LoadedYaml:
    """Parse YAML text into plain data with a path -> line map.

    Raises :class:`yaml.MarkedYAMLError` (always with a mark) on bad syntax or a broken limit; problems
    with single values (an integer too long, an invalid date, an unknown tag) go to ``problems``.
    """
    env = os.environ if env is None else env
    if len(text) > limits.max_bytes:
        problem = f"larger than {limits.max_bytes} characters, the most a config may be"
        raise InputRejected(problem, _mark("<config>", b"", 0))
    loader = _new_loader(text, limits)
    try:
        node = loader.get_single_node()
    except yaml.reader.ReaderError as exc:
        # A reader error has a position but no mark; the C reader counts UTF-8 bytes, the Python one
        # characters.
        data = text.encode("utf-8") if _CLoader is not None else text
        problem = f"{exc.reason}: character #x{exc.character:04x}" if isinstance(exc.character, int) else exc.reason
        raise InputRejected(problem, _mark("<config>", data, exc.position)) from None
    finally:
        loader.dispose()
    result = LoadedYaml(data=None)
    if node is None:
        result.data = {}
        return result
    result.data = _Builder(result, env, limits).build(node, ())
    return result


def _mark(name: str, data: bytes | str, offset: int) -> Any:
    """A mark (0-based line and column, in characters) for an offset into ``data``."""
    offset = max(0, min(offset, len(data)))
    newline: Any = b"\n" if isinstance(data, bytes) else "\n"
    line = data.count(newline, 0, offset)
    start = data.rfind(newline, 0, offset) + 1
    prefix = data[start:offset]
    column = len(prefix.decode("utf-8", errors="replace")) if isinstance(prefix, bytes) else len(prefix)
    return yaml.Mark(name, offset, line, column, None, None)  # type: ignore[arg-type]


class _BoundedComposer(Composer):
    """PyYAML's composer, counting nodes as they would be expanded and refusing what breaks a limit.

    Aliases stay shared nodes here (cheap); the cost shows only when plain data is built, which visits an
    aliased node once per reference. So each anchored node's expanded size and height are remembered, and
    every alias charges them to the budget at the place it is used.
    """

    def _init_budget(self, limits: YamlLimits) -> None:
        self._limits = limits
        self._nodes = 0
        self._aliases = 0
        self._depth = 0
        self._deepest = 0
        self._open: set[str] = set()  # anchors of collections still being composed
        self._cost: dict[str, tuple[int, int]] = {}  # anchor -> (expanded nodes, expanded height)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event: Any = self.peek_event()  # type: ignore[attr-defined]
        limits = self._limits
        if isinstance(event, AliasEvent):
            anchor = str(event.anchor)
            if anchor in self._open:
                problem = f"recursive alias *{anchor}: it refers to a node that contains it"
                raise InputRejected(problem, event.start_mark)
            self._aliases += 1
            if self._aliases > limits.max_aliases:
                raise InputRejected(f"more than {limits.max_aliases} aliases", event.start_mark)
            nodes, height = self._cost.get(anchor, (1, 1))  # undefined: the composer reports it
            self._charge(nodes, event.start_mark)
            self._reach(self._depth + height, event.start_mark)
            return super().compose_node(parent, index)
        self._charge(1, event.start_mark)
        self._depth += 1
        self._reach(self._depth, event.start_mark)
        anchor = event.anchor
        nodes_before, deepest_before = self._nodes, self._deepest
        self._deepest = self._depth
        if anchor is not None and isinstance(event, CollectionStartEvent):
            self._open.add(anchor)
        node = super().compose_node(parent, index)
        if anchor is not None:
            self._open.discard(anchor)
            self._cost[anchor] = (self._nodes - nodes_before + 1, self._deepest - self._depth + 1)
        self._deepest = max(deepest_before, self._deepest)
        self._depth -= 1
        return node

    def _charge(self, nodes: int, mark: Any) -> None:
        self._nodes += nodes
        if self._nodes > self._limits.max_nodes:
            raise InputRejected(
                f"more than {self._limits.max_nodes} values once aliases are expanded (an alias bomb?)", mark
            )

    def _reach(self, depth: int, mark: Any) -> None:
        self._deepest = max(self._deepest, depth)
        if depth > self._limits.max_depth:
            raise InputRejected(f"nested deeper than {self._limits.max_depth} levels", mark)


def _new_loader(text: str, limits: YamlLimits) -> Any:
    """libyaml parses events ~8x faster than PyYAML's Python parser; composition stays in Python (the
    bounded composer above) either way, so the budget applies whichever parser is installed."""
    if _CLoader is not None:
        loader = _CLoader(text)
    else:
        _refuse_deep_flow(text, limits)
        loader = _PyLoader(text)
    loader._init_budget(limits)
    return loader


def _refuse_deep_flow(text: str, limits: YamlLimits) -> None:
    """PyYAML's Python scanner reads a whole flow collection ahead (any ``[`` may start a key) and keeps
    one pending key per open bracket, so ``[[[[...`` costs quadratic time before the composer sees a node;
    libyaml stops at 1 000 levels by itself. Counting brackets is cruder (a bracket inside a quoted string
    counts too) but only matters past ``max_depth`` open brackets, which no real config has."""
    depth = 0
    for index, char in enumerate(text):
        if char in "[{":
            depth += 1
            if depth > limits.max_depth:
                raise InputRejected(f"nested deeper than {limits.max_depth} levels", _mark("<config>", text, index))
        elif char in "]}" and depth:
            depth -= 1


class _PyLoader(_BoundedComposer, yaml.SafeLoader):
    pass


try:
    from yaml._yaml import CParser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _CLoader: type[Any] | None = None
else:

    class _CBoundedLoader(_BoundedComposer, CParser, SafeConstructor, Resolver):
        def __init__(self, text: str) -> None:
            CParser.__init__(self, text)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

    _CLoader = _CBoundedLoader


class _Builder:
    """Nodes to plain data (dicts, lists, scalars), recording each path's line and each bad value."""

    def __init__(self, out: LoadedYaml, env: Mapping[str, str], limits: YamlLimits) -> None:
        self.out, self.env, self.limits = out, env, limits
        self.scalars = SafeConstructor()

    def build(self, node: yaml.Node, path: Path) -> Any:
        out = self.out
        out.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            if node.tag != _MAP_TAG:
                out.problems.append((path, f"YAML tag {node.tag} is not supported here"))
            mapping: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    out.lines[(*path, "?")] = key_node.start_mark.line + 1
                    out.problems.append(((*path, "?"), "a mapping key must be a plain value, not a list or mapping"))
                    continue
                key = str(self.scalar(key_node, path))
                if key == "<<":
                    out.problems.append((path, "YAML merge keys (<<) are not supported; repeat the values"))
                    continue
                if key in mapping:
                    out.lines[(*path, key)] = key_node.start_mark.line + 1
                    out.problems.append(((*path, key), "duplicate key"))
                    continue
                mapping[key] = self.build(value_node, (*path, key))
                out.lines[(*path, key)] = key_node.start_mark.line + 1
            return mapping
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ_TAG:
                out.problems.append((path, f"YAML tag {node.tag} is not supported here"))
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)
        value = self.scalar(node, path)
        if isinstance(value, str) and "$" in value:
            expanded, missing = expand_env(value, self.env)
            for name in missing:
                out.problems.append((path, f"environment variable {name} is not set (use ${{{name}:-default}})"))
            return expanded
        return value

    def scalar(self, node: yaml.ScalarNode, path: Path) -> Any:
        """Resolve one scalar with YAML's safe rules (ints, floats, bools, nulls, timestamps); a value that
        does not convert (a 13th month, a 5 000-digit integer, an unknown tag) is a problem at its path."""
        if node.tag == _INT_TAG and len(node.value) > self.limits.max_int_digits:
            digits = sum(c.isdigit() for c in node.value)
            self.out.problems.append((path, f"integer with {digits} digits; at most {self.limits.max_int_digits}"))
            return None
        try:
            return self.scalars.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            self.out.problems.append((path, str(exc.problem or exc)))
        except Exception as exc:  # PyYAML's constructors fail in many ways on odd text (``!!timestamp x``)
            kind = node.tag.rsplit(":", 1)[-1]
            # a ValueError says what is wrong (month must be in 1..12); anything else is PyYAML tripping on odd text
            why = f": {exc}" if isinstance(exc, ValueError | OverflowError) and str(exc) else ""
            self.out.problems.append((path, f"invalid {kind} {node.value[:40]!r}{why}"))
        self.scalars.recursive_objects.clear()  # a failed construction leaves its node marked as in progress
        return None


def format_path(path: Path) -> str:
    """``('checks', 0, 'source', 'path')`` -> ``checks[0].source.path``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"
