"""Parse a request body as JSON without letting its shape hurt the daemon or reach the store.

Why not plain ``json.loads``: an integer literal of 5 000 digits raises a ``ValueError`` that is not a
``JSONDecodeError``, 5 000 nested brackets raise ``RecursionError``, ``"\\ud800"`` decodes to a lone surrogate
that later fails to encode, a NUL character is stored by SQLite but refused by PostgreSQL, and ``NaN`` or
``1e999`` become floats that PostgreSQL's JSON refuses. Each of those used to be a 500 or an answer that
depended on the store. Here every one is a :class:`InvalidInput` naming the field, so the answer is a 400 and
the same on every store.

How: numbers are parsed by hooks that leave a :class:`_Refused` placeholder instead of a too-big value (the
hook does not know where it is; the walk that follows does, so the message names the field), the C decoder's
own recursion guard is caught, and one iterative walk then checks depth, container sizes, string lengths
and characters.

>>> parse_object(b'{"points": [{"name": "x", "value": 1}]}')
{'points': [{'name': 'x', 'value': 1}]}
>>> parse_object(b'{"labels": {"job": "a\\\\u0000b"}}')
Traceback (most recent call last):
...
aiops.errors.InvalidInput: labels.job: contains a NUL character
>>> parse_object(b'{"n": 1' + b'0' * 30 + b'}')
Traceback (most recent call last):
...
aiops.errors.InvalidInput: n: integer too large (limit: 64-bit signed integers)
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Final

from aiops.errors import InvalidInput

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
_MAX_INT_DIGITS: Final = 19  # int64 has at most 19 digits: anything longer is refused before int() runs
_MAX_NUMBER_CHARS: Final = 64
_FORBIDDEN_CHARS: Final = re.compile("[\x00\ud800-\udfff]")
_ESCAPE_TO_CHECK: Final = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")  # the escapes that can spell one


@dataclass(frozen=True)
class JsonLimits:
    """Shape limits of an accepted body. Body size is limited before parsing (``MAX_BODY`` in the app)."""

    max_depth: int = 16  # nesting levels, the top-level object counting as 1
    max_items: int = 10_000  # entries in one array or object (the ingest endpoints' batch limit)
    max_string: int = 64 * 1024  # characters in one string or key


DEFAULT_LIMITS: Final = JsonLimits()


@dataclass(frozen=True)
class _Refused:
    """Left by the number hooks in place of a literal that cannot be kept; the walk reports it with its field."""

    why: str


def _parse_int(text: str) -> int | _Refused:
    if len(text) - text.startswith("-") > _MAX_INT_DIGITS:
        return _Refused("integer too large (limit: 64-bit signed integers)")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        return _Refused("integer too large (limit: 64-bit signed integers)")
    return value


def _parse_float(text: str) -> float | _Refused:
    if len(text) > _MAX_NUMBER_CHARS:
        return _Refused(f"number literal longer than {_MAX_NUMBER_CHARS} characters")
    value = float(text)
    if not math.isfinite(value):
        return _Refused("number out of range")
    return value


def _parse_constant(text: str) -> _Refused:
    return _Refused(f"{text} is not a JSON number; send a finite number (or null)")


def parse_object(body: bytes, limits: JsonLimits = DEFAULT_LIMITS) -> dict[str, Any]:
    """The body as a JSON object (an empty body is ``{}``); raises :class:`InvalidInput` for anything else."""
    if not body.strip():
        return {}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"malformed JSON body: not UTF-8 (byte {exc.start})") from None
    try:
        data = json.loads(
            text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant
        )
    except RecursionError:
        raise InvalidInput(f"malformed JSON body: nested deeper than {limits.max_depth} levels") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"malformed JSON body: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"the JSON body must be an object, not {_json_kind(data)}")
    # Characters are checked only if the text can hold one to refuse: a NUL or a lone surrogate can reach a
    # decoded string only through a ``\\u`` escape (raw ones are refused by the decoders above).
    scan_chars = _ESCAPE_TO_CHECK.search(text) is not None
    if not _tree_is_fine(data, 1, limits, scan_chars):
        check_tree(data, limits)  # finds the same problem again, this time with the field's path
    return data


def _tree_is_fine(value: dict[str, Any] | list[Any], depth: int, limits: JsonLimits, chars: bool) -> bool:
    """Whether :func:`check_tree` would accept ``value``; no paths are built, so an ingest batch of thousands
    of points costs a fraction of the walk that names fields. Recursion is bounded: it stops at
    ``limits.max_depth``."""
    if depth > limits.max_depth or len(value) > limits.max_items:
        return False
    longest = limits.max_string
    if isinstance(value, dict):
        if value and max(map(len, value)) > longest:
            return False
        if chars and any(_FORBIDDEN_CHARS.search(key) for key in value):
            return False
        items: Any = value.values()
    else:
        items = value
    for item in items:
        kind = type(item)
        if kind is str:
            if len(item) > longest or (chars and _FORBIDDEN_CHARS.search(item)):
                return False
        elif kind is dict or kind is list:
            if not _tree_is_fine(item, depth + 1, limits, chars):
                return False
        elif kind is _Refused:
            return False
    return True


def check_tree(data: dict[str, Any], limits: JsonLimits = DEFAULT_LIMITS) -> None:
    """Depth, sizes, strings and refused numbers, checked without recursion (the input chooses the depth)."""
    stack: list[tuple[Any, str, int]] = [(data, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            _check_string(value, path, limits)
        elif isinstance(value, dict | list):
            if depth > limits.max_depth:
                raise InvalidInput(f"nested deeper than {limits.max_depth} levels", path or None)
            if len(value) > limits.max_items:
                raise InvalidInput(f"{len(value)} entries (limit {limits.max_items})", path or None)
            if isinstance(value, dict):
                for key, item in value.items():
                    _check_string(key, path, limits, what="a key")
                    stack.append((item, f"{path}.{key}" if path else key, depth + 1))
            else:
                for index, item in enumerate(value):
                    stack.append((item, f"{path}.{index}" if path else str(index), depth + 1))
        elif isinstance(value, _Refused):
            raise InvalidInput(value.why, path or None)


def _check_string(text: str, path: str, limits: JsonLimits, what: str = "") -> None:
    prefix = f"{what} " if what else ""
    if len(text) > limits.max_string:
        raise InvalidInput(f"{prefix}longer than {limits.max_string} characters", path or None)
    bad = _FORBIDDEN_CHARS.search(text)
    if bad is not None:
        kind = "a NUL character" if bad.group() == "\x00" else "a lone surrogate (not valid Unicode)"
        raise InvalidInput(f"{prefix}contains {kind}", path or None)


def has_forbidden_chars(text: str) -> bool:
    """Whether ``text`` holds a character no field may hold (NUL, a lone surrogate)."""
    return _FORBIDDEN_CHARS.search(text) is not None


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"
