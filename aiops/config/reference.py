"""Writes docs/configuration.md from the config models and every installed plugin's Params, so the reference
cannot drift from the code (a test compares them). Run: ``python -m aiops.config.reference > docs/configuration.md``.
"""

from __future__ import annotations

import enum
import sys
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from aiops import plugins
from aiops.config.models import (
    ActionConfig,
    CheckConfig,
    ClusterConfig,
    LogConfig,
    PolicyConfig,
    ServerConfig,
    Settings,
    StoreConfig,
    VerifyConfig,
)
from aiops.config.yamlsource import LIMITS
from aiops.durations import format_duration, parse_duration

_SECTIONS: list[tuple[str, type[BaseModel], str]] = [
    ("Top level", Settings, ""),
    ("`store`", StoreConfig, "SQLite by default; `postgresql://user@host/db` for PostgreSQL."),
    ("`server`", ServerConfig, "The HTTP listener: /metrics, health, API."),
    ("`log`", LogConfig, "`json` unset: JSON lines when stderr is not a terminal."),
    ("`cluster`", ClusterConfig, "Replicas sharing one PostgreSQL store (operations.md: Running several replicas)."),
    ("`checks[]`", CheckConfig, "One scheduled check: a source, its detectors and what to do about findings."),
    ("`checks[].policy`", PolicyConfig, "The escalation ladder and its guards."),
    ("`checks[].policy.verify`", VerifyConfig, "How an action's effect is judged."),
    (
        "`checks[].policy.actions[]`",
        ActionConfig,
        "A rung of the ladder: `type` names a remediation plugin; other keys are the plugin's parameters.",
    ),
]
_GROUP_TITLES = {
    plugins.SOURCES: "Sources (`checks[].source`)",
    plugins.DETECTORS: "Detectors (`checks[].detectors[]`)",
    plugins.REMEDIATIONS: "Remediations (`checks[].policy.actions[]`)",
    plugins.NOTIFIERS: "Notifiers (`notifiers.NAME`)",
}


def _parses_durations(metadata: Any) -> bool:
    """Whether validators in this metadata turn ``30s`` / ``2m`` into seconds (the ``Duration`` type)."""
    return any(getattr(m, "func", None) is parse_duration for m in metadata)


def _duration_fields(model: type[BaseModel]) -> set[str]:
    """Fields a model types as :data:`aiops.durations.Duration` (every duration in config and plugins is one)."""
    return {n for n, f in model.model_fields.items() if _parses_durations(f.metadata)}


def _type_name(annotation: Any, duration: bool = False) -> str:
    if annotation is None or annotation is type(None):
        return "null"
    if duration and annotation is float:
        return "duration"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " \\| ".join(repr(member.value) for member in annotation)
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *metadata = typing.get_args(annotation)
        return _type_name(base, duration or _parses_durations(metadata))
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a, duration) for a in typing.get_args(annotation))
    if origin is typing.Literal:
        return " \\| ".join(repr(a) for a in typing.get_args(annotation))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo, duration: bool = False) -> str:
    if field.default is not PydanticUndefined:
        value = field.default
        if hasattr(value, "value"):
            value = value.value
        if duration and isinstance(value, int | float) and not isinstance(value, bool):
            return f"`{format_duration(value) if value else '0s'}`"  # what users write, not the seconds
        return f"`{value!r}`" if value is not None else "—"
    if field.default_factory is not None:
        try:
            value = field.default_factory()  # type: ignore[call-arg]
        except TypeError:
            return "(computed)"
        if isinstance(value, BaseModel):
            return "(section)"
        return f"`{value!r}`"
    return "**required**"


def _table(model: type[BaseModel]) -> list[str]:
    lines = ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    durations = _duration_fields(model)
    for name, field in model.model_fields.items():
        duration = name in durations
        key = field.alias or name
        if model is ActionConfig and key == "params":
            continue
        desc = (field.description or "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{key}` | {_type_name(field.annotation, duration)} | {_default(field, duration)} | {desc} |")
    return lines


def _limits_line() -> str:
    lim = LIMITS
    return (
        f"Limits (docs/security.md): UTF-8, at most {lim.max_bytes // 1024} KiB, {lim.max_nodes} values once aliases "
        f"are expanded, {lim.max_aliases} aliases, nesting depth {lim.max_depth}, integers of {lim.max_int_digits} "
        "digits; no recursive aliases, no merge keys (`<<`); a `${VAR:-default}` default holds no `$` or `}`."
    )


def _first_paragraph(doc: str | None) -> str:
    """A plugin's summary: its docstring up to the first blank line, joined (a sentence may wrap lines).

    >>> _first_paragraph("A changepoint is a point the\\n    recent segment cannot explain.\\n\\n    Details.")
    'A changepoint is a point the recent segment cannot explain.'
    """
    paragraph = (doc or "").strip().split("\n\n", 1)[0]
    return " ".join(line.strip() for line in paragraph.splitlines())


def render() -> str:
    out = [
        "# Configuration reference",
        "",
        "Generated from the code by `python -m aiops.config.reference`; do not edit by hand.",
        "YAML; `${VAR}` and `${VAR:-default}` are expanded in values; durations are like `30s`, `5m`, `1h30m`.",
        "Validate with `aiops check-config FILE` (the same loader `aiops run` uses).",
        _limits_line(),
        "",
    ]
    for title, model, note in _SECTIONS:
        out += [f"## {title}", ""]
        if note:
            out += [note, ""]
        out += [*_table(model), ""]
    out += [
        "# Plugins",
        "",
        "Each block is `{type: NAME, ...parameters}`. Installed plugins only; "
        "`aiops plugins` lists what your installation has.",
        "",
    ]
    for group in plugins.GROUPS:
        out += [f"## {_GROUP_TITLES[group]}", ""]
        for name, ep in sorted(plugins.available(group).items()):
            if not ep.value.startswith(("aiops.", "aiops_detectors", "aiops_remediations")):
                continue
            cls = plugins.load(group, name)
            out += [f"### `{name}`", "", _first_paragraph(cls.__doc__), ""]
            model = plugins.params_model(cls)
            out += [*_table(model), ""] if model.model_fields else ["No parameters.", ""]
    return "\n".join(out).rstrip() + "\n"

if __name__ == "__main__":
    sys.stdout.write(render())
