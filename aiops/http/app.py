"""The ASGI app: routing, auth, body limits and error answers around the handlers of :mod:`aiops.http.endpoints`.

Order of checks on every request, so that nobody unauthorised gets the server to read or parse anything:
route and method (404/405) -> query characters -> auth (401/403) -> declared size (413) -> body read with a
running size cap (413) -> JSON guarded against huge numbers, deep nesting, NUL and lone surrogates (400)
-> schema (400 naming the field) -> handler. Every refusal is an RFC 9457 problem; anything unexpected is a
500 with an error id that appears in the one log line carrying the real error, never its text (which may
quote SQL, a path or a secret).

``/metrics`` is prometheus-client's own ASGI app, run on a worker thread: collecting calls back into the
store (open incidents by state), and a slow store must never stall the event loop that answers ``/livez``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

import structlog
from prometheus_client import CollectorRegistry, make_asgi_app
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aiops.errors import AiopsError, InvalidInput, StoreError
from aiops.http.endpoints import ApiContext, Auth, Call, Endpoint
from aiops.http.jsonbody import has_forbidden_chars, parse_object
from aiops.http.problems import (
    HttpError,
    error_response,
    new_error_id,
    problem_response,
    public_message,
    refusal_status,
)
from aiops.http.tokens import tokens_match

MAX_BODY: Final = 1024 * 1024  # 1 MiB: the API takes JSON objects of at most 10 000 small items
MAX_QUERY_VALUE: Final = 512
INLINE_PARSE_LIMIT: Final = 16 * 1024

log = structlog.get_logger("aiops.http")


class _IdConvertor(Convertor[int]):
    """Ids in paths: 1 to 18 digits, so every id fits a 64-bit column on every store."""

    regex = "[0-9]{1,18}"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(value)


register_url_convertor("aiops_id", _IdConvertor())


def build_app(
    ctx: ApiContext, registry: CollectorRegistry, endpoints: Sequence[Endpoint], extra: Sequence[BaseRoute] = ()
) -> ASGIApp:
    """The whole HTTP surface as one ASGI app (wrapped in the access log); ``extra`` routes (the web console's
    mount) keep their own auth and answer before the API's."""
    by_path: dict[str, dict[str, Endpoint]] = {}
    for endpoint in endpoints:
        by_path.setdefault(endpoint.path, {})[endpoint.method] = endpoint
    routes: list[BaseRoute] = [*extra, Route("/metrics", _MetricsApp(registry))]
    routes += [
        Route(path.replace("{id}", "{id:aiops_id}"), _PathApp(ctx, methods)) for path, methods in by_path.items()
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_exception, Exception: _unexpected})
    app.router.redirect_slashes = False  # "/livez/" is not "/livez": a 404, as before, not a redirect
    return _AccessLog(app)


class _PathApp:
    """Every method on one path: dispatches to its endpoint or answers 405 listing the allowed ones."""

    def __init__(self, ctx: ApiContext, methods: Mapping[str, Endpoint]) -> None:
        self.ctx = ctx
        self.methods = dict(methods)
        self.allow = ", ".join(sorted({*methods, *(["HEAD"] if "GET" in methods else [])}))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        endpoint = self.methods.get("GET" if method == "HEAD" else method)
        try:
            if endpoint is None:
                raise HttpError(
                    405, f"{method} is not allowed on {scope['path']}; use {self.allow}", headers={"Allow": self.allow}
                )
            request = Request(scope, receive)
            query = _query(request)
            _authorize(endpoint, self.ctx, scope)
            path_id = int(scope.get("path_params", {}).get("id", 0))
            body: BaseModel | Response | None = None
            raw = await _read_body(request) if endpoint.parse_body is not None else None
            big = raw is not None and len(raw) > INLINE_PARSE_LIMIT
            if raw is not None and big and not endpoint.inline:
                # A big body (an ingest batch) is parsed and answered in ONE worker hand-off: on a busy
                # machine every hand-off waits for the OS to schedule a thread, and that wait was most of an
                # ingest request's latency.
                call = Call(self.ctx, path_id, query, None, 0.0)
                body = await run_in_threadpool(_parse_and_answer, endpoint, call, raw)
            elif raw is not None:
                # A small body is parsed right here (tens of microseconds; most refusals end here without a
                # thread hand-off); a big one on a worker thread, so the loop keeps answering probes.
                body = await run_in_threadpool(_parse, endpoint, raw) if big else _parse(endpoint, raw)
            if isinstance(body, Response):
                response = body
            elif endpoint.inline:
                response = _answer(endpoint, Call(self.ctx, path_id, query, body, time.time()))
            else:
                response = await run_in_threadpool(_answer, endpoint, Call(self.ctx, path_id, query, body, time.time()))
        except HttpError as exc:
            response = error_response(exc)
        await response(scope, receive, send)


def _query(request: Request) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if len(value) > MAX_QUERY_VALUE or len(name) > MAX_QUERY_VALUE:
            raise HttpError(400, f"query parameter longer than {MAX_QUERY_VALUE} characters", field=name[:64])
        if has_forbidden_chars(name) or has_forbidden_chars(value):
            raise HttpError(400, "query parameter contains a NUL character", field=name[:64])
        out[name] = value  # the last value of a repeated name wins
    return out


def _authorize(endpoint: Endpoint, ctx: ApiContext, scope: Scope) -> None:
    """Bearer token compared in constant time, as bytes (a non-ASCII header never raises)."""
    if endpoint.auth in (Auth.NONE, Auth.SIGNED_LINK):  # a signed link carries its own proof
        return
    if ctx.token is None:
        if endpoint.auth is Auth.BEARER_OR_LOOPBACK and ctx.loopback:
            return
        raise HttpError(
            403,
            "write endpoints are disabled because no API token is configured; set server.token "
            "(or server.token_file, or the AIOPS_API_TOKEN environment variable) to enable them",
        )
    header = next((value for name, value in scope["headers"] if name == b"authorization"), b"")
    scheme, _, credentials = header.partition(b" ")
    if scheme.lower() != b"bearer" or not tokens_match(credentials.strip(), ctx.token):
        raise HttpError(
            401,
            "missing or wrong bearer token (send Authorization: Bearer <server.token>)",
            headers={"WWW-Authenticate": 'Bearer realm="aiops"'},
        )


async def _read_body(request: Request) -> bytes:
    """At most MAX_BODY bytes, whether the size is declared or the body is chunked; the 413 closes the
    connection so a client streaming gigabytes is not read to the end."""
    too_large = HttpError(413, f"request body too large (limit {MAX_BODY} bytes)", headers={"Connection": "close"})
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(endpoint: Endpoint, raw: bytes) -> BaseModel | Response:
    """The validated body, or the problem answering a body the schema refuses."""
    assert endpoint.parse_body is not None
    try:
        return endpoint.parse_body(parse_object(raw))
    except InvalidInput as exc:
        return problem_response(400, str(exc), field=exc.field)
    except Exception as exc:
        return _internal_error(exc, endpoint.path)


def _parse_and_answer(endpoint: Endpoint, call: Call, raw: bytes) -> Response:
    """:func:`_parse`, then :func:`_answer` with the body (its arrival time taken once it is parsed, as on
    the other paths)."""
    body = _parse(endpoint, raw)
    if isinstance(body, Response):
        return body
    return _answer(endpoint, dataclasses.replace(call, body=body, now=time.time()))


def _answer(endpoint: Endpoint, call: Call) -> Response:
    """Run one validated request (on a worker thread unless inline), turning every error into a problem."""
    try:
        return endpoint.handler(call)
    except HttpError as exc:
        return error_response(exc)
    except InvalidInput as exc:
        return problem_response(400, str(exc), field=exc.field)
    except StoreError as exc:
        error_id = new_error_id()
        log.error("http.store_error", error_id=error_id, path=endpoint.path, error=str(exc))
        return problem_response(503, f"the store is unavailable; retry later (error id {error_id})", error_id=error_id)
    except AiopsError as exc:
        return _refusal(exc, endpoint)
    except Exception as exc:
        return _internal_error(exc, endpoint.path)


def _refusal(exc: AiopsError, endpoint: Endpoint) -> Response:
    """The backend said no: not_found -> 404, invalid -> 400, any other reason -> 409 (a state conflict)."""
    status = refusal_status(exc.reason)
    shown = public_message(str(exc))
    if shown is None:
        error_id = new_error_id()
        log.error("http.refusal_hidden", error_id=error_id, path=endpoint.path, error=str(exc))
        shown = f"request refused; see the daemon's log (error id {error_id})"
    response = problem_response(status, shown)
    response.headers["X-Aiops-Reason"] = exc.reason[:64]
    return response


def _internal_error(exc: BaseException, path: str) -> Response:
    error_id = new_error_id()
    log.error("http.handler_failed", error_id=error_id, path=path, exc_info=exc)
    return problem_response(500, f"internal error; see the daemon's log (error id {error_id})", error_id=error_id)


async def _http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no route matched) as problems."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return problem_response(404, f"no such endpoint: {request.url.path[:200]}")
    return problem_response(exc.status_code, str(exc.detail)[:200], headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    return _internal_error(exc, request.url.path[:200])


class _MetricsApp:
    """prometheus-client's ASGI app on a worker thread (its own short-lived loop), GET only."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.app = make_asgi_app(registry=registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            response = problem_response(
                405, f"{scope['method']} is not allowed on /metrics; use GET, HEAD", headers={"Allow": "GET, HEAD"}
            )
            await response(scope, receive, send)
            return
        if not _utf8(scope.get("query_string", b"")) or not all(_utf8(v) for _, v in scope["headers"]):
            await problem_response(400, "query string or headers are not UTF-8")(scope, receive, send)
            return
        request = await receive()
        sent: list[Message] = []

        async def replay() -> Message:
            return request

        async def collect(message: Message) -> None:
            sent.append(message)

        await run_in_threadpool(asyncio.run, self.app(scope, replay, collect))
        for message in sent:
            await send(message)


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class _AccessLog:
    """Every answer gets ``Cache-Control: no-store`` and one debug line (never the Authorization header)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"cache-control", b"no-store")]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            client: Any = scope.get("client")
            log.debug(
                "http.request",
                method=scope["method"],
                path=scope["path"][:200],
                status=status,
                seconds=round(time.monotonic() - started, 6),
                client=client[0] if client else None,
            )
