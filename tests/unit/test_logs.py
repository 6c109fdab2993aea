"""Logging: JSON lines off a TTY, console on one, stdlib routed through the same chain, secrets redacted."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
import structlog

from aiops import logs
from aiops.logs import add_secrets, configure_logging

SECRET = "hunter2-Sup3r-s3cret"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    yield
    logs._clear_secrets()
    configure_logging("info", json=True)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_when_stderr_is_not_a_tty_and_secrets_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    configure_logging("info", secrets=[SECRET])  # json=None: decided by stderr, which is not a TTY
    log = structlog.get_logger("aiops.test").bind(check="cpu", url=f"https://hooks.example/{SECRET}")
    log.info("notifier.failed", authorization="Bearer abc.def", token="plain-token-value", detail=f"said {SECRET}")
    [line] = _lines(err)
    assert line["event"] == "notifier.failed" and line["check"] == "cpu" and line["level"] == "info"
    assert line["logger"] == "aiops.test" and str(line["timestamp"]).endswith("Z")
    text = json.dumps(line)
    assert SECRET not in text and "abc.def" not in text and "plain-token-value" not in text
    assert line["authorization"] != "Bearer abc.def" and line["token"] != "plain-token-value"


def test_secrets_added_later_are_redacted_too() -> None:
    out = io.StringIO()
    configure_logging("info", json=True, stream=out)
    add_secrets(["late-added-secret-value", None, ""])
    structlog.get_logger().warning("reloaded", dsn="postgresql://u:x@h/db?note=late-added-secret-value")
    assert "late-added-secret-value" not in out.getvalue()
    assert "postgresql://" in out.getvalue()


def test_stdlib_logging_goes_through_the_same_chain() -> None:
    out = io.StringIO()
    configure_logging("info", json=True, secrets=[SECRET], stream=out)
    logging.getLogger("some.library").warning("connecting to %s", f"https://u:{SECRET}@example.com")
    logging.getLogger("some.library").debug("hidden at info")
    [line] = _lines(out)
    assert line["logger"] == "some.library" and line["level"] == "warning"
    assert "connecting to" in str(line["event"]) and SECRET not in str(line["event"])


def test_exceptions_are_rendered_and_redacted() -> None:
    out = io.StringIO()
    configure_logging("info", json=True, secrets=[SECRET], stream=out)
    try:
        raise RuntimeError(f"401 from server, token {SECRET}")
    except RuntimeError:
        structlog.get_logger().exception("remediation.failed", action="restart")
    [line] = _lines(out)
    assert "RuntimeError" in str(line["exception"]) and SECRET not in out.getvalue()


def test_level_filters_and_console_on_a_tty() -> None:
    out = _Tty()
    configure_logging("warning", stream=out, secrets=[SECRET])
    log = structlog.get_logger("aiops.engine")
    log.info("not shown")
    log.error("check.failed", check="cpu", password=SECRET)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())  # colours on a TTY
    assert "not shown" not in text and "check.failed" in text and "check=cpu" in text
    assert SECRET not in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_debug_level_and_bad_level() -> None:
    out = io.StringIO()
    configure_logging("DEBUG", json=True, stream=out)
    structlog.get_logger().debug("shown")
    assert _lines(out)[0]["event"] == "shown"
    with pytest.raises(ValueError, match="log level must be one of"):
        configure_logging("loud")


def test_a_real_process_writes_json_lines_to_a_piped_stderr() -> None:
    code = (
        "import structlog, logging; from aiops.logs import configure_logging;"
        "configure_logging(secrets=['proc-secret-123']);"
        "structlog.get_logger('p').info('hello', api_key='k-123456', note='proc-secret-123');"
        "logging.getLogger('lib').warning('lib line')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout == ""
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [entry["event"] for entry in lines] == ["hello", "lib line"]
    assert "proc-secret-123" not in result.stderr and "k-123456" not in result.stderr
