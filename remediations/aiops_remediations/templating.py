"""Placeholders in remediation templates, and the rules a value must pass before it enters an argv.

``{incident.check}``, ``{incident.id}``, ``{incident.fingerprint}``, ``{incident.severity}``,
``{incident.state}`` and ``{label.NAME}`` are substituted as plain text inside one argument: never re-split,
never through a shell, so a placeholder always ends up inside exactly one argv element.

Why value rules on top: label values come from whoever can push an alert (``POST /api/v1/alertmanager``,
``/api/v1/ingest``) or name a series. No shell runs, but a program still reads an argument that starts with
``-`` as an option: ``kubectl ... -n {label.namespace}`` with the value ``--all-namespaces`` acts on every
namespace. So a value is data, never an option: it is refused when it starts with ``-`` (unless the action
lists the placeholder in ``allow_dash``), holds a control character, is empty, longer than
:data:`MAX_VALUE_CHARS`, or does not fit the placeholder's ``match`` pattern. A refusal raises
:class:`aiops.errors.PlanRefused`; the engine then holds the action with the reason on the incident.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from aiops.errors import PlanRefused, RemediationError
from aiops.types import IncidentView

PLACEHOLDER = re.compile(r"\{(incident\.(?:id|check|fingerprint|severity|state)|label\.[^{}\s]+)\}")
MAX_VALUE_CHARS = 1024  # also bounds the work of an operator's `match` pattern on a pushed value
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def placeholder_name(name: str) -> str:
    """The full placeholder name for a rule key: a bare ``namespace`` means ``label.namespace``.

    >>> placeholder_name("namespace"), placeholder_name("label.ns"), placeholder_name("incident.check")
    ('label.namespace', 'label.ns', 'incident.check')
    """
    return name if name.startswith(("label.", "incident.")) else f"label.{name}"


def placeholders(texts: Collection[str]) -> list[str]:
    """Every placeholder used in ``texts``, in order of first use."""
    found: dict[str, None] = {}
    for text in texts:
        for match in PLACEHOLDER.finditer(text):
            found.setdefault(match.group(1))
    return list(found)


@dataclass(frozen=True)
class ValueRules:
    """What a substituted value must satisfy: keys are full placeholder names (``label.namespace``)."""

    allow_dash: frozenset[str] = frozenset()
    match: Mapping[str, re.Pattern[str]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, allow_dash: Collection[str], match: Mapping[str, str]) -> ValueRules:
        """Rules from an action's ``allow_dash`` / ``match``; raises ValueError naming a bad pattern."""
        patterns: dict[str, re.Pattern[str]] = {}
        for name, pattern in match.items():
            try:
                patterns[placeholder_name(name)] = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"match.{name}: invalid regular expression {pattern!r}: {exc}") from None
        return cls(frozenset(placeholder_name(n) for n in allow_dash), patterns)

    def check(self, name: str, value: str) -> None:
        """Raise :class:`PlanRefused` saying why ``value`` may not stand in for ``{name}``."""
        problem = self._problem(name, value)
        if problem is not None:
            shown = repr(value if len(value) <= 60 else value[:57] + "...")
            raise PlanRefused(f"{{{name}}} = {shown}: {problem}")

    def _problem(self, name: str, value: str) -> str | None:
        short = name.removeprefix("label.")
        if len(value) > MAX_VALUE_CHARS:
            return f"{len(value)} characters, more than {MAX_VALUE_CHARS}"
        if _CONTROL.search(value):
            return "holds a control character (newline, NUL, ...)"
        pattern = self.match.get(name)
        if pattern is not None and not pattern.fullmatch(value):
            return f"does not match {pattern.pattern!r} (match.{short})"
        if not value and pattern is None:
            return f"empty; a command that lost its argument may act on the wrong thing (declare match.{short})"
        if value.startswith("-") and name not in self.allow_dash:
            return f"starts with '-', so the program would read it as an option (allow it: allow_dash: [{short}])"
        return None


def render_template(text: str, incident: IncidentView, rules: ValueRules | None = None) -> str:
    """Substitute the placeholders in one string; other braces stay. With ``rules``, every substituted
    value must pass them (an argv element); without, the text is data elsewhere (a JSON body, a target).

    A missing label is an error rather than an empty string: a command that silently lost its target
    argument could act on the wrong thing.

    >>> from aiops.types import IncidentState, Severity
    >>> inc = IncidentView(7, "fp", "disk", IncidentState.FIRING, Severity.WARNING, "s", {"svc": "a b"}, 0.0)
    >>> render_template("--unit={label.svc}.service --id {incident.id} {other}", inc)
    '--unit=a b.service --id 7 {other}'
    >>> bad = IncidentView(7, "fp", "disk", IncidentState.FIRING, Severity.WARNING, "s", {"ns": "--all"}, 0.0)
    >>> render_template("{label.ns}", bad, ValueRules())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    aiops.errors.PlanRefused: {label.ns} = '--all': starts with '-', so the program would read it as an option...
    >>> render_template("{label.ns}", bad, ValueRules(allow_dash=frozenset({"label.ns"})))
    '--all'
    """

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("label."):
            label = name[len("label.") :]
            if label not in incident.labels:
                known = ", ".join(sorted(incident.labels)) or "none"
                raise RemediationError(
                    f"placeholder {{{name}}}: the incident has no label {label!r} (labels: {known})",
                    recoverable=False,
                    reason="placeholder",
                )
            value = str(incident.labels[label])
        else:
            value = str(getattr(incident, name[len("incident.") :]))
        if rules is not None:
            rules.check(name, value)
        return value

    return PLACEHOLDER.sub(sub, text)
