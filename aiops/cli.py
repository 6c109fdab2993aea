"""The ``aiops`` command line. Every error is one clear line and a non-zero exit; ``--debug`` shows the
traceback. Commands that read state open the store named by the config, so they work whether or not a
daemon is running; commands that change an incident go through the running daemon's API.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

import aiops
from aiops.commands.common import DEMO_RUN_DIR, demo_dir, load_config_or_demo, resolve_config, table_width
from aiops.errors import AiopsError, ConfigError

if TYPE_CHECKING:
    from aiops.config.models import Settings


def _debug_enabled() -> bool:
    return "--debug" in sys.argv or os.environ.get("AIOPS_DEBUG") == "1"


class _Commands(click.Group):
    """The command group, listing every command with its whole summary (wrapped to the terminal), where
    click's default cuts each one at about 45 characters."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in _LAZY_COMMANDS:
            command = _load_lazy(cmd_name)
            if command is not None:
                self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.short_help or _summary(command.help or "")))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _summary(help_text: str) -> str:
    """A command's first paragraph, on one line."""
    import inspect

    return " ".join(inspect.cleandoc(help_text).split("\n\n", 1)[0].split())


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.version_option(aiops.__version__, "--version", prog_name="aiops")
def cli(debug: bool) -> None:
    """aiops: detect, remediate, verify — a self-healing ML-operations daemon."""


def _config_option(required: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--config",
        "-c",
        "config_path",
        type=click.Path(dir_okay=False),
        required=required,
        envvar="AIOPS_CONFIG",
        help="Config file (default: $AIOPS_CONFIG, ./aiops.yaml, or the built-in demo).",
    )


def _output_option() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "-o",
        "--output",
        "output",
        type=click.Choice(["table", "wide", "json"]),
        default=None,
        help="table: fitted to the terminal, long text abbreviated after a whole word (the default on a "
        "terminal); wide: every cell whole (the default into a pipe or file); json: everything (= --json).",
    )


def _run_builtin_demo(listen: str | None) -> None:
    """`aiops run` with no config: the full demo (a real model served and monitored, faults injected, healed
    and verified, a report written), then everything keeps running until SIGTERM like any daemon.
    AIOPS_DEMO_SPEED and AIOPS_DEMO_SCENARIOS (comma-separated) tune it."""
    from aiops.commands.demo import demo

    scenarios = tuple(s for s in os.environ.get("AIOPS_DEMO_SCENARIOS", "all").split(",") if s)
    click.echo(
        "aiops: no config given; running the built-in demo (aiops demo --keep-running). "
        f"Its config: {DEMO_RUN_DIR}/aiops.yaml. Stop with Ctrl-C.",
        err=True,
    )
    click.get_current_context().invoke(
        demo,
        scenarios=scenarios,
        speed=float(os.environ.get("AIOPS_DEMO_SPEED", "10")),
        directory=DEMO_RUN_DIR,
        json_summary=None,
        report=None,
        print_config=False,
        live=None,
        keep_running=True,
        listen=listen or "127.0.0.1:9464",
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # as `run` does: never wait at exit for worker threads whose leases were released


# -- run ---------------------------------------------------------------------------------------------------


@cli.command()
@_config_option()
@click.option("--listen", help="HOST:PORT for /metrics and the API (overrides server.listen).")
@click.option("--log-level", default=None, help="debug, info, warning or error (overrides log.level).")
def run(config_path: str | None, listen: str | None, log_level: str | None) -> None:
    """Run the daemon. Without a config it runs the built-in demo scenario."""
    from aiops.logs import configure_logging

    path = resolve_config(config_path)
    demo = None
    if path is None and os.environ.get("AIOPS_MINI_DEMO") == "1":  # the small latency demo, for quick poking
        from aiops.demo import DemoScenario

        every = os.environ.get("AIOPS_DEMO_FAULT_EVERY")
        demo = DemoScenario.prepare(demo_dir(), degrade_every=float(every) if every else None)
        path = str(demo.config_path)
    elif path is None:
        _run_builtin_demo(listen)
        return
    config = load_config_or_demo(path)
    settings = config.settings
    level = "debug" if _debug_enabled() else (log_level or settings.log.level)
    configure_logging(level, settings.log.json_, config.secrets)
    from aiops import faults
    from aiops.daemon import Daemon

    faults.arm(os.environ.get(faults.ENV, "").strip() or None)  # crash-safety tests only
    daemon = Daemon(config, listen=listen, notify_socket=os.environ.get("NOTIFY_SOCKET"))
    if demo is not None:
        demo.start()
    try:
        code = daemon.serve_forever()
    finally:
        if demo is not None:
            demo.stop()
    # Worker threads still waiting on a detached remediation have had their grace period and their leases
    # are released (the next start resumes them): do not let the interpreter wait for them at exit.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@cli.command("check-config")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def check_config(files: tuple[str, ...]) -> None:
    """Validate config files with the same loader as `aiops run`; lists every problem with its line."""
    from aiops.config.loader import load_config

    failed = False
    for fname in files:
        try:
            config = load_config(fname)
        except ConfigError as exc:
            failed = True
            for line in exc.problems:
                click.echo(line, err=True)
            continue
        n = len(config.settings.checks)
        m = len(config.settings.notifiers)
        click.echo(f"{fname}: ok ({n} check{'s' if n != 1 else ''}, {m} notifier{'s' if m != 1 else ''})")
    if failed:
        sys.exit(1)


# -- state ---------------------------------------------------------------------------------------------------


def _store(config_path: str | None) -> Any:
    from aiops.store.store import Store

    store = Store(load_config_or_demo(config_path).settings.store.url)
    store.migrate()
    return store


def _age(ts: float | None) -> str:
    import time

    from aiops.durations import format_duration

    return "-" if ts is None else format_duration(max(0.0, time.time() - float(ts))) + " ago"


@cli.command()
@_config_option()
@click.option("--state", help="Only incidents in this state (pending, firing, remediating, verifying, ...).")
@click.option("--open", "open_only", is_flag=True, help="Only open (unresolved) incidents.")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output with transitions and actions.")
@_output_option()
def incidents(
    config_path: str | None, state: str | None, open_only: bool, limit: int, as_json: bool, output: str | None
) -> None:
    """List incidents, newest first."""
    from aiops.engine.incidents import incident_dict
    from aiops.text import table

    store = _store(config_path)
    rows = store.list_incidents(state=state, open_only=open_only, limit=limit)
    if as_json or output == "json":
        from aiops.store.verdicts import verdicts_of_incidents

        verdicts = verdicts_of_incidents(store, [r.id for r in rows])
        out = []
        for row in rows:
            item = incident_dict(row)
            item["transitions"] = [t.to_json() for t in store.transitions(row.id)]
            item["actions"] = [a.to_json() for a in store.list_actions(incident_id=row.id)]
            item["verdicts"] = [r.to_dict() for r in verdicts.get(row.id, [])]
            keys = ("notifier", "event", "state", "attempts", "last_error", "sent_at")
            item["notifications"] = [n.to_json(keys) for n in store.list_notifications(incident_id=row.id)]
            out.append(item)
        click.echo(json.dumps(out, indent=2))
        return
    if not rows:
        click.echo("no incidents")
        return
    cells = []
    for r in rows:
        failed = [n for n in store.list_notifications(incident_id=r.id, state="failed")]
        note = f"[{len(failed)} notification(s) failed] " if failed else ""
        cells.append(
            [
                str(r.id),
                r.state.value,
                r.severity.value,
                r.check_name,
                _age(r.opened_at),
                str(r.attempts),
                note + r.summary,
            ]
        )
    headers = ["ID", "STATE", "SEV", "CHECK", "OPENED", "TRIES", "SUMMARY"]
    for line in table(headers, cells, flexible=[6], width=table_width(output), right=[0, 5]):
        click.echo(line)


@cli.command()
@_config_option()
@click.option("--state", help="Only actions in this state (pending, awaiting_approval, running, ...).")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_output_option()
def actions(config_path: str | None, state: str | None, limit: int, as_json: bool, output: str | None) -> None:
    """List the action ledger: plan, mode, guard decision and outcome."""
    from aiops.text import table

    store = _store(config_path)
    rows = store.list_actions(state=state, limit=limit)
    breakers = store.list_breakers()
    if as_json or output == "json":
        click.echo(json.dumps([r.to_json() for r in rows], indent=2))
        return
    if not rows:
        click.echo("no actions")
    else:
        headers = ["ID", "INC", "STATE", "MODE", "ACTION", "CREATED", "PLAN", "GUARD", "OUTCOME"]
        cells = [
            [
                str(r.id),
                str(r.incident_id),
                r.state.value,
                r.mode.value,
                r.action_label,
                _age(r.created_at),
                r.description,
                r.guard or "",
                r.summary,
            ]
            for r in rows
        ]
        for line in table(headers, cells, flexible=[6, 7, 8], width=table_width(output), right=[0, 1]):
            click.echo(line)
    for b in breakers:  # circuit breakers that are open or counting failures
        if b.state != "closed" or b.failures:
            click.echo(
                f"circuit breaker {b.action_type}: {b.state.value}, {b.failures} consecutive failure(s)"
                + (f", opened {_age(b.opened_at)}" if b.opened_at else "")
                + (f": {b.last_reason}" if b.last_reason else "")
            )


@cli.command()
@_config_option()
def pause(config_path: str | None) -> None:
    """Kill switch on: no remediation runs (detection and notifications go on)."""
    _store(config_path).set_flag("paused", "1")
    click.echo("automation paused: no remediation will run until `aiops resume`")


@cli.command()
@_config_option()
def resume(config_path: str | None) -> None:
    """Kill switch off."""
    _store(config_path).set_flag("paused", "0")
    click.echo("automation resumed")


def auth_headers(settings: Settings) -> dict[str, str]:
    """The bearer header for the daemon's API, with the token the daemon itself accepts: both resolve it with
    the one function (config, then token file, then environment), so they cannot disagree."""
    from aiops.config.loader import api_token

    token = api_token(settings)
    return {"Authorization": f"Bearer {token}"} if token else {}


def _api(config_path: str | None, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    import requests

    config = load_config_or_demo(config_path)
    server = config.settings.server
    host, _, port = server.listen.rpartition(":")
    host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    headers = auth_headers(config.settings)
    url = f"http://{host}:{port}{path}"
    try:
        resp = requests.request(method, url, json=body or {}, headers=headers, timeout=10)
    except requests.RequestException as exc:
        raise AiopsError(f"cannot reach the daemon at {host}:{port}: {exc.__class__.__name__}") from exc
    is_json = resp.headers.get("content-type", "").startswith(("application/json", "application/problem+json"))
    data = resp.json() if is_json else {}
    if resp.status_code >= 400:  # errors are RFC 9457 problems: "detail" says what is wrong
        raise AiopsError(f"daemon answered {resp.status_code}: {data.get('detail', resp.text[:200])}")
    return data


@cli.command()
@_config_option()
@click.argument("action_id", type=int)
def approve(config_path: str | None, action_id: int) -> None:
    """Approve an action waiting for approval (through the running daemon's API)."""
    data = _api(config_path, "POST", f"/api/v1/actions/{action_id}/approve")
    click.echo(f"action {action_id} approved: {data.get('state', '')}")


@cli.command()
@_config_option()
@click.argument("action_id", type=int)
def deny(config_path: str | None, action_id: int) -> None:
    """Reject an action waiting for approval; the ladder moves on."""
    data = _api(config_path, "POST", f"/api/v1/actions/{action_id}/deny")
    click.echo(f"action {action_id} denied: {data.get('state', '')}")


@cli.command()
@_config_option()
@click.argument("incident_id", type=int)
@click.option("--comment", default="", help="Why.")
def ack(config_path: str | None, incident_id: int, comment: str) -> None:
    """Acknowledge an incident: automation stands back, a person has it."""
    _api(config_path, "POST", f"/api/v1/incidents/{incident_id}/ack", {"comment": comment})
    click.echo(f"incident {incident_id} acknowledged")


@cli.command()
@_config_option()
@click.argument("incident_id", type=int, required=False)
@click.option("--for", "duration", default="1h", show_default=True, help="How long, e.g. 30m, 2h.")
@click.option("--comment", default="")
@click.option(
    "--match",
    "-m",
    "matchers",
    multiple=True,
    help='Alertmanager label matcher: a="b", a!="b", a=~"re", a!~"re" or {a="b",c="d"}; repeatable.',
)
@click.option("--list", "list_", is_flag=True, help="List matcher silences.")
@click.option("--expire", type=int, default=None, help="End matcher silence ID now.")
def silence(
    config_path: str | None,
    incident_id: int | None,
    duration: str,
    comment: str,
    matchers: tuple[str, ...],
    list_: bool,
    expire: int | None,
) -> None:
    """Silence an incident's notifications for a while, or (--match) every notification matching labels."""
    if matchers or list_ or expire is not None:
        from aiops.engine.silences import silence_command

        for line in silence_command(_store(config_path), list(matchers), duration, comment, list_, expire):
            click.echo(line)
        return
    if incident_id is None:
        raise click.UsageError("give an INCIDENT_ID, or --match LABEL=VALUE (or --list / --expire ID)")
    _api(config_path, "POST", f"/api/v1/incidents/{incident_id}/silence", {"duration": duration, "comment": comment})
    click.echo(f"incident {incident_id} silenced for {duration}")


# -- introspection -------------------------------------------------------------------------------------------


@cli.command()
def plugins() -> None:
    """List installed plugins of every kind (built-in and third-party alike)."""
    from aiops import plugins as registry

    for group in registry.GROUPS:
        click.echo(f"{group}:")
        rows = registry.describe(group)
        if not rows:
            click.echo("  (none)")
        for name, target, summary in rows:
            click.echo(f"  {name:<16} {summary}  [{target}]")


@cli.command()
def version() -> None:
    """Print the version."""
    click.echo(f"aiops {aiops.__version__}")


# Sub-commands that live in their own modules, imported only when one of them runs (or help lists them): a
# `drift` call then does not pay for the imports of `detect` (numba kernels, the detector plugins).
_LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "detect": ("aiops.commands.detect", "detect"),
    "drift": ("aiops.commands.drift", "drift"),
    "demo": ("aiops.commands.demo", "demo"),
    "db": ("aiops.commands.db", "db"),
    "verdict": ("aiops.commands.verdicts", "verdict"),
    "effectiveness": ("aiops.commands.verdicts", "effectiveness"),
    "backtest": ("aiops.commands.backtest", "backtest"),
    "tune": ("aiops.commands.backtest", "tune"),
    "warm-cache": ("aiops.commands.warm_cache", "warm_cache"),
    "cluster": ("aiops.commands.cluster", "cluster"),
}


def _load_lazy(name: str) -> click.Command | None:
    """The lazily registered command ``name``, or None when its module is absent (an optional extra)."""
    import importlib

    module, attr = _LAZY_COMMANDS[name]
    try:
        command = getattr(importlib.import_module(module), attr, None)
    except ImportError:
        return None
    return command if isinstance(command, click.Command) else None


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: one line per error, exit 1 (2 for usage errors), tracebacks only with --debug."""
    try:
        _main(argv)
    finally:
        if argv is None:  # the console script: the process ends now
            _skip_final_collection()


def _skip_final_collection() -> None:
    """Leave the objects that exist now out of the interpreter's last garbage collections.

    At exit CPython collects every tracked object once more, only for the operating system to take the
    memory back a moment later; after pandas was imported that walk alone costs a call ~0.2 s of CPU (an
    ``aiops drift`` on two 100 000-row files takes ~2 s in all). Objects are still released by reference
    counting; only cyclic garbage is left to the operating system. A caller that embeds the CLI passes
    ``argv`` and keeps its collector as it was.
    """
    import gc

    gc.freeze()


def _main(argv: list[str] | None) -> None:
    try:
        rv = cli.main(args=argv, prog_name="aiops", standalone_mode=False)
        sys.exit(rv if isinstance(rv, int) else 0)  # click 8.2+ returns ctx.exit(n)'s code here
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aiops: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ConfigError as exc:
        if _debug_enabled():
            traceback.print_exc()
        for line in exc.problems:
            click.echo(line, err=True)
        sys.exit(1)
    except AiopsError as exc:
        if _debug_enabled():
            traceback.print_exc()
        click.echo(f"aiops: error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if _debug_enabled():
            traceback.print_exc()
        click.echo(
            f"aiops: internal error: {exc.__class__.__name__}: {exc} (run with --debug for the traceback)", err=True
        )
        sys.exit(1)
