"""The one config loader: ``aiops check-config`` and ``aiops run`` both call :func:`load_config`.

Every problem is reported, not just the first, as ``FILE:LINE: path.to.field: what is wrong``; unknown
plugin names list the names that exist.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from aiops import plugins
from aiops.config.models import ActionConfig, Settings
from aiops.config.yamlsource import LIMITS, LoadedYaml, Path, decode_utf8, format_path, load_yaml
from aiops.errors import AiopsError, ConfigError, PluginNotFound
from aiops.redact import url_secrets


@dataclass
class Config:
    """A validated configuration: the settings plus each plugin block's validated parameters."""

    settings: Settings
    path: str
    plugin_params: dict[Path, BaseModel] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
    """Read, expand, validate. Raises ConfigError carrying every problem with its line."""
    fname = str(path)
    try:
        with open(fname, "rb") as fh:
            data = fh.read(LIMITS.max_bytes + 1)  # never more than the cap, whatever the file is
    except OSError as exc:
        raise ConfigError([f"{fname}: cannot read: {exc.strerror or exc}"]) from exc
    try:
        text = decode_utf8(data, fname)
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([_yaml_problem(fname, exc, "(file)")]) from None
    return parse_config(text, fname, env)


def parse_config(text: str, fname: str = "<config>", env: Mapping[str, str] | None = None) -> Config:
    try:
        loaded = load_yaml(text, env)
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(fname, exc, "(yaml)")]) from None
    if not isinstance(loaded.data, dict):
        raise ConfigError([f"{fname}:1: (top level): expected a mapping of settings"])

    problems: list[tuple[Path, str]] = list(loaded.problems)
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(loaded.data)
    except ValidationError as exc:
        problems.extend(_pydantic_problems(exc, ()))

    plugin_params: dict[Path, BaseModel] = {}
    for block_path, group, block in _plugin_blocks(loaded.data):
        params, errors = _validate_plugin(group, block_path, block)
        problems.extend(errors)
        if params is not None:
            plugin_params[block_path] = params
    problems.extend(_cross_reference_problems(loaded.data))

    if problems:
        raise ConfigError(_render(fname, loaded, _root_causes(problems, loaded.problems)))
    assert settings is not None
    return Config(settings=settings, path=fname, plugin_params=plugin_params, secrets=_secrets(settings, plugin_params))


def _yaml_problem(fname: str, exc: yaml.YAMLError, where: str) -> str:
    """``FILE:LINE:COL: (yaml): problem (context at line N)`` for any YAML error, marked or not."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and context_mark is not None:
        problem += f" ({context} at line {context_mark.line + 1})"
    elif context:
        problem += f" ({context})"
    place = f"{mark.line + 1}:{mark.column + 1}" if mark is not None else "1"
    return _one_line(f"{fname}:{place}: {where}: {problem}")


def _pydantic_problems(exc: ValidationError, prefix: Path) -> list[tuple[Path, str]]:
    out: list[tuple[Path, str]] = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))  # drop union branch tags
        msg = err["msg"]
        if err["type"] == "missing":
            msg = "required field is missing"
        elif err["type"] == "extra_forbidden":
            msg = "unknown field"
        msg = msg.removeprefix("Value error, ")
        out.append(((*prefix, *loc), msg))
    return out


def _plugin_blocks(data: Mapping[str, Any]) -> Iterator[tuple[Path, str, Mapping[str, Any]]]:
    """Every ``{type: ...}`` block in raw data, wherever the rest of validation failed or not."""
    notifiers = data.get("notifiers")
    if isinstance(notifiers, dict):
        for name, block in notifiers.items():
            if isinstance(block, dict):
                yield ("notifiers", name), plugins.NOTIFIERS, block
    checks = data.get("checks")
    if not isinstance(checks, list):
        return
    for i, check in enumerate(checks):
        if not isinstance(check, dict):
            continue
        if isinstance(check.get("source"), dict):
            yield ("checks", i, "source"), plugins.SOURCES, check["source"]
        detectors = check.get("detectors")
        if isinstance(detectors, list):
            for j, block in enumerate(detectors):
                if isinstance(block, dict):
                    yield ("checks", i, "detectors", j), plugins.DETECTORS, block
        policy = check.get("policy")
        actions = policy.get("actions") if isinstance(policy, dict) else None
        if isinstance(actions, list):
            for k, block in enumerate(actions):
                if isinstance(block, dict):
                    yield ("checks", i, "policy", "actions", k), plugins.REMEDIATIONS, block


def plugin_raw_params(group: str, block: Mapping[str, Any], cls: type[Any]) -> dict[str, Any]:
    """The plugin's own parameters in a block. Actions also carry ladder settings, which are not, except
    ``timeout``, which a remediation that has its own timeout parameter receives too."""
    if group == plugins.REMEDIATIONS:
        params = dict(ActionConfig.model_validate(dict(block)).params) if "type" in block else {}
        if "timeout" in block and "timeout" in plugins.params_model(cls).model_fields:
            params["timeout"] = block["timeout"]
        return params
    return {k: v for k, v in block.items() if k != "type"}


def _validate_plugin(
    group: str, path: Path, block: Mapping[str, Any]
) -> tuple[BaseModel | None, list[tuple[Path, str]]]:
    name = block.get("type")
    if not isinstance(name, str):
        return None, []  # reported by the schema pass
    try:
        cls = plugins.load(group, name)
    except PluginNotFound as exc:
        return None, [((*path, "type"), str(exc))]
    except AiopsError as exc:
        return None, [((*path, "type"), str(exc))]
    try:
        raw = plugin_raw_params(group, block, cls)
    except ValidationError:
        return None, []  # the ladder settings are wrong; reported by the schema pass
    try:
        return plugins.params_model(cls).model_validate(raw), []
    except ValidationError as exc:
        return None, _pydantic_problems(exc, path)
    except Exception as exc:  # a plugin's own validator (third-party code) raised something odd: still a line
        return None, [(path, f"invalid parameters for {name!r}: {exc.__class__.__name__}: {exc}")]


def _cross_reference_problems(data: Mapping[str, Any]) -> list[tuple[Path, str]]:
    out: list[tuple[Path, str]] = []
    notifiers = data.get("notifiers") if isinstance(data.get("notifiers"), dict) else {}
    assert isinstance(notifiers, dict)
    known = ", ".join(sorted(notifiers)) or "none defined under 'notifiers'"
    routes = data.get("routes")
    if isinstance(routes, list):
        for r, route in enumerate(routes):
            receivers = route.get("receivers") if isinstance(route, dict) else None
            for k, ref in enumerate(receivers if isinstance(receivers, list) else []):
                if isinstance(ref, str) and ref not in notifiers:
                    out.append((("routes", r, "receivers", k), f"unknown notifier {ref!r}; known: {known}"))
    checks = data.get("checks")
    if not isinstance(checks, list):
        return out
    seen: dict[str, int] = {}
    for i, check in enumerate(checks):
        if not isinstance(check, dict):
            continue
        name = check.get("name")
        if isinstance(name, str):
            if name in seen:
                out.append((("checks", i, "name"), f"duplicate check name (also checks[{seen[name]}])"))
            seen.setdefault(name, i)
        policy = check.get("policy")
        notify = policy.get("notify") if isinstance(policy, dict) else None
        if isinstance(notify, list):
            for k, ref in enumerate(notify):
                if isinstance(ref, str) and ref not in notifiers:
                    known = ", ".join(sorted(notifiers)) or "none defined under 'notifiers'"
                    out.append((("checks", i, "policy", "notify", k), f"unknown notifier {ref!r}; known: {known}"))
    return out


def _root_causes(problems: list[tuple[Path, str]], expansion: list[tuple[Path, str]]) -> list[tuple[Path, str]]:
    """One error per problem: a value whose ``${VAR}`` is unset is reported as that, not also as the empty
    value's consequence ("must be an absolute URL") on the same line."""
    unset = {path for path, _ in expansion}
    return [item for item in problems if item[0] not in unset or item in expansion]


def _render(fname: str, loaded: LoadedYaml, problems: list[tuple[Path, str]]) -> list[str]:
    seen: set[tuple[int, str, str]] = set()
    lines: list[tuple[int, str, str]] = []
    for path, msg in problems:
        item = (loaded.line_of(path), format_path(path), msg)
        if item not in seen:
            seen.add(item)
            lines.append(item)
    lines.sort(key=lambda t: t[0])
    return [_one_line(f"{fname}:{line}: {where}: {msg}") for line, where, msg in lines]


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _one_line(text: str) -> str:
    r"""One problem, one line: a key or value holding a newline or a control character is shown escaped.

    >>> _one_line("bad.yaml:3: checks[0].a\nb: unknown field")
    'bad.yaml:3: checks[0].a\\nb: unknown field'
    """
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def api_token(settings: Settings) -> str | None:
    """The API bearer token: ``server.token``, else ``server.token_file``, else ``$AIOPS_API_TOKEN``."""
    server = settings.server
    return _token(server.token, server.token_file, "token") or os.environ.get("AIOPS_API_TOKEN") or None


def ui_read_token(settings: Settings) -> str | None:
    """The console's read-only token: ``server.ui_read_token``, else ``server.ui_read_token_file``."""
    server = settings.server
    return _token(server.ui_read_token, server.ui_read_token_file, "ui_read_token")


def _token(value: str | None, file: str | None, name: str) -> str | None:
    """A token given inline, else read from its file (stripped; an empty file means no token)."""
    if value:
        return value
    if file:
        try:
            return FsPath(file).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise AiopsError(f"server.{name}_file: cannot read {file}: {exc.strerror}") from exc
    return None


_SECRET_KEYS = ("token", "secret", "password", "api_key", "apikey", "authorization", "routing_key", "url")


def _secrets(settings: Settings, params: Mapping[Path, BaseModel]) -> list[str]:
    """Values the log redactor must never print: tokens, passwords, webhook URLs."""
    found: list[str] = []
    found.extend(t for t in (settings.server.token, settings.server.ui_read_token) if t)
    for model in params.values():
        for key, value in model.model_dump().items():
            if isinstance(value, str) and value and any(s in key.lower() for s in _SECRET_KEYS):
                found.append(value)
                if "url" in key.lower():
                    found.extend(url_secrets(value))  # HTTP errors print only the path and query
    return found
