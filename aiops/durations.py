"""Human durations (``30s``, ``5m``, ``1h30m``, ``250ms``) as used throughout the configuration."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(text: str | float | int) -> float:
    """Seconds in a duration; a bare number is seconds.

    >>> parse_duration("1m30s"), parse_duration("250ms"), parse_duration(5)
    (90.0, 0.25, 5.0)
    """
    if isinstance(text, bool):
        raise ValueError("a duration, not a boolean")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError("durations cannot be negative")
        return float(text)
    s = str(text).strip().lower()
    if not s:
        raise ValueError("empty duration")
    try:
        value = float(s)
    except ValueError:
        pass
    else:
        if value < 0:
            raise ValueError("durations cannot be negative")
        return value
    pos, total = 0, 0.0
    for match in _PART.finditer(s):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(s) or pos == 0:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 5m, 1h30m, 250ms)")
    return total


def format_duration(seconds: float) -> str:
    """Inverse of :func:`parse_duration` for messages.

    >>> format_duration(90), format_duration(0.25), format_duration(7200)
    ('1m30s', '250ms', '2h')
    """
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    rest = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts) or "0s"


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""A pydantic field type: ``10s``, ``2m`` or a number of seconds, read as float seconds."""
