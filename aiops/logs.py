"""One place that configures logging: structlog for our code, stdlib logging routed through the same chain.

Why one chain: a line from ``urllib3`` or APScheduler must be as parseable (JSON lines when stderr is not a
terminal) and as safe (secrets redacted) as a line from the engine. So structlog hands its event dict to
stdlib logging, and a single :class:`structlog.stdlib.ProcessorFormatter` on one stderr handler finishes
*every* record: the same small processors (level, ISO timestamp, exception text, redaction) then the
renderer. Redaction runs after the exception is formatted, so a traceback that quotes a token is redacted
too.

Bound context instead of formatted strings::

    log = structlog.get_logger(__name__).bind(check="cpu")
    log.info("check.finished", findings=2, seconds=0.12)
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from aiops.redact import redact_mapping

LEVELS = ("debug", "info", "warning", "error", "critical")

_secrets_lock = threading.Lock()
_secrets: frozenset[str] = frozenset()
_handler: logging.Handler | None = None


def add_secrets(values: Iterable[str | None]) -> None:
    """Register secret values (tokens, passwords, webhook URLs) to be cut out of every log line from now on.

    The daemon calls this after loading its configuration; values are kept for the life of the process
    (a reload only adds), because a line about the old configuration may still be logged after a reload.
    """
    global _secrets
    new = {v for v in values if isinstance(v, str) and v.strip()}
    if new:
        with _secrets_lock:
            _secrets = _secrets | new


def registered_secrets() -> frozenset[str]:
    with _secrets_lock:
        return _secrets


def _clear_secrets() -> None:
    """For tests only: forget every registered secret."""
    global _secrets
    with _secrets_lock:
        _secrets = frozenset()


def _stringify_objects(value: Any) -> Any:
    """Arbitrary objects (an exception bound as ``error=exc``) as text, so redaction sees what is printed."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return {k: _stringify_objects(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_stringify_objects(v) for v in value]
    return str(value)


def redact_processor(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask secret-looking keys' values and cut registered secret values everywhere.

    Uses :mod:`aiops.redact`, the same code that cleans error messages and stored details, so a secret
    that is safe in one place is safe in all of them.
    """
    return redact_mapping(_stringify_objects(event_dict), registered_secrets())


# -- configuration ------------------------------------------------------------------------------------------
class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that looks ``sys.stderr`` up at each write.

    So output follows a replaced stderr (pytest's capture, a daemon that redirects it) instead of writing
    to whatever stderr was when logging was configured.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._fixed = stream
        super().__init__(stream)

    @property
    def stream(self) -> TextIO:
        return self._fixed if self._fixed is not None else sys.stderr

    @stream.setter
    def stream(self, value: TextIO | None) -> None:
        pass  # logging.StreamHandler.__init__ assigns it; we resolve it at each write instead


def _shared_processors() -> list[Processor]:
    """What every record goes through before rendering, whether it came from structlog or stdlib."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


def configure_logging(
    level: str = "info",
    json: bool | None = None,
    secrets: Iterable[str] = (),
    *,
    stream: TextIO | None = None,
) -> None:
    """Configure structlog and stdlib logging to write to stderr (or ``stream``), replacing any earlier setup.

    ``json=None`` chooses by the terminal: JSON lines when stderr is not a TTY (journald, Kubernetes, CI),
    the console renderer when a person is watching. Safe to call again (e.g. ``--debug`` after startup).
    """
    global _handler
    name = level.strip().lower()
    if name == "warn":
        name = "warning"
    if name not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
    numeric = logging.getLevelNamesMapping()[name.upper()]
    add_secrets(secrets)
    out = stream if stream is not None else sys.stderr
    if json is None:
        isatty = getattr(out, "isatty", None)
        json = not (callable(isatty) and isatty())

    renderer: Processor
    if json:
        renderer = structlog.processors.JSONRenderer(default=str, sort_keys=False)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=_colors(out), exception_formatter=_plain_exception)

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,  # before redaction: tracebacks can quote secrets
            redact_processor,
            renderer,
        ],
    )
    handler = _StderrHandler(stream)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    if _handler is not None and _handler in root.handlers:
        root.removeHandler(_handler)
    root.addHandler(handler)
    root.setLevel(numeric)
    _handler = handler
    # Chatty libraries stay at warning unless we debug.
    for noisy in ("urllib3", "apscheduler", "asyncio", "alembic"):
        logging.getLogger(noisy).setLevel(numeric if numeric <= logging.DEBUG else logging.WARNING)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            # Redact here too, not only in the formatter: any other handler on the root logger (pytest's
            # capture, a user's) receives this event dict as the record's message.
            structlog.processors.format_exc_info,
            redact_processor,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        context_class=dict,
        # Not cached: structlog.testing.capture_logs() in tests must work on loggers already used.
        cache_logger_on_first_use=False,
    )


def _colors(out: TextIO) -> bool:
    isatty = getattr(out, "isatty", None)
    return bool(callable(isatty) and isatty())


def _plain_exception(sio: TextIO, exc_info: Any) -> None:
    """Exceptions arrive already formatted (and redacted) as text; nothing to add."""
    del sio, exc_info


def get_logger(name: str | None = None, **context: Any) -> Any:
    """A structlog logger, optionally with bound context; a thin alias so callers need one import."""
    log = structlog.get_logger(name)
    return log.bind(**context) if context else log
