"""Label matchers, in Alertmanager's grammar: the one way silences, routes and push filters select labels.

Why Alertmanager's: people who write aiops silences and routes already write Alertmanager's, and the alerts
aiops receives come from it. One parser means one set of rules and one set of error messages everywhere.

The grammar (``name`` is a label name; a missing label counts as the empty string, as in Alertmanager)::

    name="value"   name!="value"   name=~"regex"   name!~"regex"      # regexes are anchored (fullmatch)
    {name="value", other=~"a|b"}                                       # several, comma-separated, all must match

A list of strings (as in the config) holds single matchers or braced groups. Inside double quotes ``\\"``,
``\\\\`` and ``\\n`` are escapes (any other backslash is kept, so ``\\d`` in a regex needs no doubling).
Older spellings that validated before the grammar was shared stay valid and mean what they meant: an
unquoted value (``team=ml``, even ``note=two words``) and a single-quoted one (``team='ml'``) are taken
as written. :func:`normalise` writes every matcher back in the quoted Alertmanager form.

>>> m = parse_matcher('severity=~"warn.*"')
>>> m, m.matches({"severity": "warning"}), m.matches({"severity": "critical"})
(Matcher(name='severity', op=<MatchOp.REGEX: '=~'>, value='warn.*'), True, False)
>>> [str(m) for m in parse_matchers(['{check="latency", env!=dev}', "team='ml'"])]
['check="latency"', 'env!="dev"', 'team="ml"']
>>> parse_matcher("no operator")
Traceback (most recent call last):
...
ValueError: matcher 'no operator': expected name="value", name!="value", name=~"regex" or name!~"regex"
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator

#: Label names: Prometheus's (letters, digits, ``_``, ``:``), plus ``.`` and ``-`` that silences accepted.
_MATCHER = re.compile(r"^\s*([A-Za-z_:][A-Za-z0-9_.:\-]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$", re.DOTALL)
_EXPECTED = 'expected name="value", name!="value", name=~"regex" or name!~"regex"'
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n"}


class MatchOp(StrEnum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"

    @property
    def negated(self) -> bool:
        return self in (MatchOp.NOT_EQUAL, MatchOp.NOT_REGEX)


@dataclass(frozen=True)
class Matcher:
    """One ``name op value`` test of a label set."""

    name: str
    op: MatchOp
    value: str
    _regex: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "op", MatchOp(self.op))
        except ValueError:
            raise ValueError(f"unknown operator {self.op!r} (use = != =~ !~)") from None
        if self.op in (MatchOp.REGEX, MatchOp.NOT_REGEX):
            try:
                object.__setattr__(self, "_regex", re.compile(self.value))
            except re.error as exc:
                raise ValueError(f"invalid regular expression {self.value!r}: {exc}") from None

    def matches(self, labels: Mapping[str, object]) -> bool:
        actual = str(labels.get(self.name, ""))
        hit = actual == self.value if self._regex is None else self._regex.fullmatch(actual) is not None
        return hit is not self.op.negated

    def __str__(self) -> str:
        """Alertmanager's spelling, which :func:`parse_matcher` reads back to an equal matcher."""
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op.value}"{escaped}"'


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        return raw[1:-1]
    if not (len(raw) >= 2 and raw[0] == raw[-1] == '"'):
        return raw
    out: list[str] = []
    chars = iter(raw[1:-1])
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, "")
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
        else:
            out.append(ch)
    return "".join(out)


def parse_matcher(text: str) -> Matcher:
    """One matcher; a ValueError names the text at fault and what was expected."""
    m = _MATCHER.match(text)
    if m is None:
        raise ValueError(f"matcher {text!r}: {_EXPECTED}")
    name, op, raw = m.groups()
    try:
        return Matcher(name, MatchOp(op), _unquote(raw))
    except ValueError as exc:
        raise ValueError(f"matcher {text!r}: {exc}") from None


def _split_group(text: str) -> list[str]:
    """The comma-separated members of ``{...}`` (commas inside quotes belong to the value)."""
    parts: list[str] = []
    current: list[str] = []
    quote = ""
    escaped = False
    for ch in text.strip()[1:-1]:
        if escaped:
            escaped = False
        elif quote and ch == "\\":
            escaped = True
        elif ch in "\"'" and (not quote or ch == quote):
            quote = "" if quote else ch
        elif ch == "," and not quote:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]  # a trailing comma is allowed, as in PromQL


def parse_matchers(spec: str | Iterable[str]) -> tuple[Matcher, ...]:
    """Every matcher in ``spec``: one string (a matcher or a ``{...}`` group) or a list of such strings."""
    texts = [spec] if isinstance(spec, str) else list(spec)
    out: list[Matcher] = []
    for text in texts:
        if not isinstance(text, str):
            raise ValueError(f"matcher {text!r}: a string, {_EXPECTED}")
        stripped = text.strip()
        if stripped.startswith("{"):
            if not stripped.endswith("}"):
                raise ValueError(f"matchers {text!r}: a group opened with '{{' must end with '}}'")
            out.extend(parse_matcher(part) for part in _split_group(stripped))
        else:
            out.append(parse_matcher(text))
    return tuple(out)


def normalise(spec: str | Iterable[str]) -> list[str]:
    """``spec`` validated and rewritten one matcher a string, in Alertmanager's quoted form (a pydantic
    validator for the config's matcher lists: what is stored and shown is the one spelling)."""
    return [str(m) for m in parse_matchers(spec)]


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, object]) -> bool:
    return all(m.matches(labels) for m in matchers)


Matchers = Annotated[list[str], AfterValidator(normalise)]
"""A pydantic field type: a list of matchers (or ``{...}`` groups), validated and stored normalised."""
