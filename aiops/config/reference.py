"""Writes docs/configuration.md from the config models and every installed plugin's Params, so the reference
cannot drift from the code (a test compares them). Run: ``python -m aiops.config.reference > docs/configuration.md``.
"""

from __future__ import annotations

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
    LogConfig,
    PolicyConfig,
    ServerConfig,
    Settings,
    StoreConfig,
    VerifyConfig,
)
from aiops.config.yamlsource import LIMITS

_SECTIONS: list[tuple[str, type[BaseModel], str]] = [
    ("Top level", Settings, ""),
    ("`store`", StoreConfig, "SQLite by default; `postgresql://user@host/db` for PostgreSQL."),
    ("`server`", ServerConfig, "The HTTP listener: /metrics, health, API."),
    ("`log`", LogConfig, "`json` unset: JSON lines when stderr is not a terminal."),
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


def _type_name(annotation: Any) -> str:
    if annotation is None or annotation is type(None):
        return "null"
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base = typing.get_args(annotation)[0]
        return "duration" if base is float else _type_name(base)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is typing.Literal:
        return " \\| ".join(repr(a) for a in typing.get_args(annotation))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.default is not PydanticUndefined:
        value = field.default
        if hasattr(value, "value"):
            value = value.value
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
    for name, field in model.model_fields.items():
        key = field.alias or name
        if model is ActionConfig and key == "params":
            continue
        desc = (field.description or "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{key}` | {_type_name(field.annotation)} | {_default(field)} | {desc} |")
    return lines


def _limits_line() -> str:
    lim = LIMITS
    return (
        f"Limits (docs/security.md): UTF-8, at most {lim.max_bytes // 1024} KiB, {lim.max_nodes} values once aliases "
        f"are expanded, {lim.max_aliases} aliases, nesting depth {lim.max_depth}, integers of {lim.max_int_digits} "
        "digits; no recursive aliases, no merge keys (`<<`); a `${VAR:-default}` default holds no `$` or `}`."
    )


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
            doc = (cls.__doc__ or "").strip().splitlines()
            out += [f"### `{name}`", "", doc[0] if doc else "", ""]
            model = plugins.params_model(cls)
            out += [*_table(model), ""] if model.model_fields else ["No parameters.", ""]
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
