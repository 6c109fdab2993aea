"""The plugin context makes its logger, HTTP session and registry opener on first use, and keeps what it is given.

Why it matters: every CLI call that builds a plugin builds a standalone context; making those up front
imported structlog and requests (~0.3 s of CPU) into calls that never use them.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests

from aiops.plugins import PluginContext


def test_a_standalone_context_imports_nothing_until_a_service_is_read() -> None:
    probe = textwrap.dedent(
        """
        import json, sys
        from aiops.plugins import PluginContext
        ctx = PluginContext.standalone("/tmp")
        before = [m for m in ("requests", "structlog", "aiops.registry") if m in sys.modules]
        session, log, opener = ctx.http, ctx.log, ctx.model_registry
        after = [m for m in ("requests", "structlog") if m in sys.modules]
        print(json.dumps([before, after, type(session).__name__, ctx.http is session]))
        """
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    before, after, session_type, same = json.loads(proc.stdout.strip().splitlines()[-1])
    assert before == [], proc.stderr[-500:]
    assert after == ["requests", "structlog"]
    assert session_type == "Session" and same  # made once, then the same session on every read


def test_services_given_to_the_constructor_are_kept(tmp_path: Path) -> None:
    session = requests.Session()
    ctx = PluginContext(state_dir=tmp_path, http=session, log="a logger")
    assert ctx.http is session and ctx.log == "a logger"
    assert dataclasses.replace(ctx, state_dir=tmp_path / "x").http is session
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.http = requests.Session()  # type: ignore[misc]


def test_the_default_registry_opener_opens_a_directory(tmp_path: Path) -> None:
    registry = PluginContext.standalone(tmp_path).model_registry(str(tmp_path / "models"))
    assert type(registry).__name__ == "FilesystemRegistry"
