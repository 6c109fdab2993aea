"""Error answers as RFC 9457 problem details (``application/problem+json``), and what may appear in them.

Every refusal the API makes is one :class:`HttpError`, rendered by :func:`problem_response` as
``{"type": "about:blank", "title": ..., "status": ..., "detail": ..., "error": ...}`` plus ``field`` (the
dotted path of the body or query field at fault) when one is to blame. ``error`` repeats ``detail`` for
clients written against the API before it spoke RFC 9457 (the CLI among them).

Why :func:`public_message`: a backend message is shown to the caller, and a message built from an
exception can carry a SQL statement (a database driver quotes the statement it ran), a traceback or a
filesystem path. Those must never leave the process: such a message is replaced by a generic one, and
absolute paths are cut down to their last part.

>>> public_message("config /etc/aiops/aiops.yaml:4: checks[0].every: not a duration")
'config aiops.yaml:4: checks[0].every: not a duration'
>>> public_message('(sqlite3.IntegrityError) NOT NULL constraint [SQL: INSERT INTO aiops_events ...]') is None
True
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Final

from starlette.responses import Response

from aiops.types import json_safe

PROBLEM_CONTENT_TYPE: Final = "application/problem+json"
JSON_CONTENT_TYPE: Final = "application/json"

_SQL_OR_TRACE: Final = re.compile(
    r"\[SQL:|\(Background on this error|Traceback \(most recent call last\)|\bFile \"|"
    r"\b(?:INSERT\s+INTO|DELETE\s+FROM|UPDATE\s+\w+\s+SET|SELECT\s.+?\sFROM)\b|"
    r"\b(?:psycopg|sqlite3|sqlalchemy)\b",
    re.IGNORECASE | re.DOTALL,
)
# Two or more segments, not inside a URL (``https://host/a/b``: every slash there follows ':', '/' or a word).
_ABSOLUTE_PATH: Final = re.compile(r"(?<![\w:/.~-])(?:/[\w.@+~-]+){2,}")


class HttpError(Exception):
    """Answer the current request with a problem: ``status``, a ``detail`` for people, maybe the ``field``."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field
        self.headers = dict(headers or {})


def refusal_status(reason: str) -> int:
    """The status of a backend refusal (:class:`aiops.errors.AiopsError` ``reason``): not_found -> 404,
    invalid -> 400, any other reason -> 409 (a state conflict)."""
    return {"not_found": 404, "invalid": 400, "bad_request": 400, "validation": 400}.get(reason, 409)


def new_error_id() -> str:
    """A short id that ties a generic answer to the one log line with the real error."""
    return uuid.uuid4().hex[:12]


def public_message(message: str) -> str | None:
    """``message`` as it may be shown to a caller, or None when it must not be shown at all (SQL, traces)."""
    if _SQL_OR_TRACE.search(message):
        return None
    return _ABSOLUTE_PATH.sub(lambda m: m.group(0).rsplit("/", 1)[-1], message)[:2000]


def encode_json(payload: Any) -> bytes:
    """Compact JSON, ASCII only: a lone surrogate or a control character in a value is escaped, never a crash."""
    return json.dumps(json_safe(payload), separators=(",", ":"), ensure_ascii=True).encode() + b"\n"


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    return Response(encode_json(payload), status, headers=dict(headers or {}), media_type=JSON_CONTENT_TYPE)


def problem_response(
    status: int,
    detail: str,
    *,
    field: str | None = None,
    error_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "error": detail,
    }
    if field is not None:
        body["field"] = field
    if error_id is not None:
        body["error_id"] = error_id
    return Response(encode_json(body), status, headers=dict(headers or {}), media_type=PROBLEM_CONTENT_TYPE)


def error_response(exc: HttpError) -> Response:
    return problem_response(exc.status, exc.detail, field=exc.field, headers=exc.headers)
