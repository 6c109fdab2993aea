"""The daemon's HTTP surface: ``/metrics``, health probes and a small JSON API, on the standard library.

Why the stdlib and not a framework: a dozen routes, no templates, no async; ``ThreadingHTTPServer`` keeps
the daemon's dependency set and start time small, and each request is one call on :class:`ApiBackend`.

Security model: reads are open (bind to 127.0.0.1, the default, or put a proxy in front); every POST needs
``Authorization: Bearer <server.token>``, compared in constant time. Without a configured token the write
endpoints are off (403 saying how to enable them), except ``POST /-/reload`` on a loopback listener,
which is what ``curl -X POST localhost:9464/-/reload`` from the same host expects. Every write is
attributed to the actor ``"api"`` in the audit trail.

Push endpoints (``POST /api/v1/ingest``, ``POST /api/v1/alertmanager``) use the same token; their body is
validated by :mod:`aiops.sources.ingest` (400 naming the field) and stored durably before the 202.
"""

from __future__ import annotations

import gzip
import hmac
import html
import ipaddress
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

import aiops
from aiops.durations import parse_duration
from aiops.errors import AiopsError
from aiops.http.backend import ApiBackend, IngestBackend
from aiops.logs import add_secrets
from aiops.sources.ingest import parse_alertmanager, parse_ingest
from aiops.types import json_safe

MAX_BODY: Final = 1024 * 1024  # 1 MiB: the API takes small JSON objects, nothing else
_DRAIN_LIMIT: Final = 8 * MAX_BODY  # read and drop an oversized body up to this, so the 413 is received
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000
ACTOR: Final = "api"

log = structlog.get_logger("aiops.http")


class HttpError(Exception):
    """Answer the current request with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def parse_listen(listen: str) -> tuple[str, int]:
    """``"host:port"`` (``"[::1]:9464"`` for IPv6, ``":9464"`` for every interface) as (host, port).

    >>> parse_listen("127.0.0.1:9464"), parse_listen("[::1]:0"), parse_listen(":80")
    (('127.0.0.1', 9464), ('::1', 0), ('', 80))
    """
    host, sep, port_text = listen.strip().rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"listen address must be HOST:PORT (e.g. 127.0.0.1:9464), not {listen!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach a listener on ``host`` (``""`` means every interface: no)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stuck client never keeps the daemon from exiting
    block_on_close = False  # stop() must not wait for idle keep-alive connections to time out
    api: ApiServer


class _Server6(_Server):
    address_family = socket.AF_INET6


_Row = dict[str, Any]
_Handler = Callable[["_RequestHandler", dict[str, str], dict[str, list[str]], dict[str, Any]], None]


class ApiServer:
    """Serves ``registry`` on ``/metrics`` and ``backend`` on the JSON API, from daemon threads.

    ``start()`` binds (``port 0`` picks a free port, see :attr:`address`) and returns at once; ``stop()``
    closes the listener. Calls on ``backend`` come from several threads at once.
    """

    def __init__(
        self,
        backend: ApiBackend,
        registry: CollectorRegistry,
        listen: str = "127.0.0.1:9464",
        token: str | None = None,
        *,
        poll_interval: float = 0.5,
    ) -> None:
        self.backend = backend
        self.poll_interval = poll_interval  # how soon stop() is noticed; tests use a short one
        self.registry = registry
        self.listen = listen
        self.token = token or None
        if self.token:
            add_secrets([self.token])  # whoever logs a request or an error, the token never shows
        self._host, self._port = parse_listen(listen)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def loopback(self) -> bool:
        return is_loopback(self._host)

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) actually bound; the real port when ``listen`` asked for port 0."""
        if self._server is None:
            return self._host, self._port
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        if host in ("", "0.0.0.0", "::"):  # a wildcard is reachable on the loopback
            host = "127.0.0.1" if host != "::" else "::1"
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> None:
        """Bind and serve in a background thread; raises AiopsError when the address cannot be bound."""
        if self._server is not None:
            return
        server_cls = _Server6 if ":" in self._host else _Server
        try:
            server = server_cls((self._host, self._port), _RequestHandler)
        except OSError as exc:
            message = f"cannot listen on {self.listen}: {exc.strerror or exc}"
            raise AiopsError(message, reason="listen") from exc
        server.api = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(self.poll_interval,), name="aiops-http", daemon=True
        )
        self._thread.start()
        log.info("http.listening", address=self.url)

    def stop(self) -> None:
        """Stop accepting requests and close the listener; requests in flight finish on their threads."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server, self._thread = None, None

    def __enter__(self) -> ApiServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive: every response carries Content-Length
    server_version = f"aiops/{aiops.__version__}"
    sys_version = ""
    timeout = 30  # an idle or slow client gives its thread back after this

    _status: int = 0

    # -- dispatch -----------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def _dispatch(self, method: str) -> None:
        started = time.monotonic()
        self._status = 0
        parsed = urlsplit(self.path)
        path = parsed.path
        try:
            body = self._read_body()  # first, so that every answer leaves the connection reusable
            handler, params = self._match(method, path)
            if method == "POST" and not path.startswith("/decide/"):  # signed links carry their own proof
                self._authorize(path)
            data = self._parse_json(body) if method == "POST" else {}
            handler(self, params, parse_qs(parsed.query), data)
        except HttpError as exc:
            self._send_json(exc.status, {"error": exc.message}, exc.headers)
        except AiopsError as exc:
            status = _status_for(exc)
            self._send_json(status, {"error": str(exc), "reason": exc.reason})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:
            log.exception("http.handler_failed", method=method, path=path)
            if not self._status:
                self._send_json(500, {"error": "internal error; see the daemon's log"})
        finally:
            log.debug(
                "http.request",
                method=method,
                path=path,
                status=self._status,
                seconds=round(time.monotonic() - started, 6),
                client=self.client_address[0] if self.client_address else None,
            )

    def _match(self, method: str, path: str) -> tuple[_Handler, dict[str, str]]:
        allowed: list[str] = []
        for route_method, pattern, handler in _ROUTES:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            if route_method == method:
                return handler, match.groupdict()
            allowed.append(route_method)
        if not allowed:
            raise HttpError(404, f"no such endpoint: {path}")
        raise HttpError(
            405, f"{method} is not allowed on {path}; use {', '.join(allowed)}", {"Allow": ", ".join(allowed)}
        )

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise HttpError(411, "chunked request bodies are not supported; send a Content-Length")
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            return b""
        try:
            length = int(raw_length)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            raise HttpError(400, f"invalid Content-Length: {raw_length!r}") from None
        if length > MAX_BODY:
            if length <= _DRAIN_LIMIT:
                self._drain(length)
            else:
                self.close_connection = True
            raise HttpError(413, f"request body too large: {length} bytes (limit {MAX_BODY})")
        return self.rfile.read(length)

    def _drain(self, length: int) -> None:
        while length > 0:
            chunk = self.rfile.read(min(length, 65536))
            if not chunk:
                break
            length -= len(chunk)

    def _authorize(self, path: str) -> None:
        token = self.server.api.token
        if token is None:
            if path == "/-/reload" and self.server.api.loopback:
                return
            raise HttpError(
                403,
                "write endpoints are disabled because no API token is configured; set server.token "
                "(or server.token_file, or the AIOPS_API_TOKEN environment variable) to enable them",
            )
        scheme, _, credentials = self.headers.get("Authorization", "").partition(" ")
        given = credentials.strip().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(given, token.encode()):
            raise HttpError(
                401,
                "missing or wrong bearer token (send Authorization: Bearer <server.token>)",
                {"WWW-Authenticate": 'Bearer realm="aiops"'},
            )

    def _parse_json(self, body: bytes) -> dict[str, Any]:
        if not body.strip():
            return {}
        try:
            data = json.loads(body)
        except UnicodeDecodeError:
            raise HttpError(400, "malformed JSON body: not UTF-8") from None
        except json.JSONDecodeError as exc:
            raise HttpError(
                400, f"malformed JSON body: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
        if not isinstance(data, dict):
            raise HttpError(400, f"the JSON body must be an object, not {type(data).__name__}")
        return data

    # -- responses ----------------------------------------------------------------------------------------
    def _send(
        self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None
    ) -> None:
        self._status = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        body = json.dumps(json_safe(payload), separators=(",", ":")).encode() + b"\n"
        self._send(status, body, "application/json", headers)

    def _send_text(self, status: int, text: str) -> None:
        self._send(status, text.encode(), "text/plain; charset=utf-8")

    # BaseHTTPRequestHandler writes an access line to stderr; ours goes through structlog in _dispatch.
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def log_error(self, format: str, *args: Any) -> None:
        log.debug("http.protocol_error", detail=format % args if args else format)

    # -- routes -------------------------------------------------------------------------------------------
    def metrics(self, _p: dict[str, str], _q: dict[str, list[str]], _b: dict[str, Any]) -> None:
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        data = encoder(self.server.api.registry)
        headers = {}
        if "gzip" in self.headers.get("Accept-Encoding", ""):
            data = gzip.compress(data, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        self._send(200, data, content_type, headers)

    def livez(self, _p: dict[str, str], _q: dict[str, list[str]], _b: dict[str, Any]) -> None:
        self._send_text(200, "ok")

    def readyz(self, _p: dict[str, str], _q: dict[str, list[str]], _b: dict[str, Any]) -> None:
        try:
            ok, reason = self.server.api.backend.ready()
        except Exception as exc:
            ok, reason = False, f"readiness check failed: {exc}"
        if ok:
            self._send_text(200, "ok")
        else:
            self._send_text(503, f"not ready: {reason or 'unknown reason'}")

    def reload(self, _p: dict[str, str], _q: dict[str, list[str]], _b: dict[str, Any]) -> None:
        ok, message = self.server.api.backend.reload()
        if ok:
            self._send_json(200, {"status": "reloaded", "message": message})
        else:
            self._send_json(500, {"error": message or "reload failed"})

    def incidents(self, _p: dict[str, str], q: dict[str, list[str]], _b: dict[str, Any]) -> None:
        items = self.server.api.backend.list_incidents(_query_str(q, "state"), _query_limit(q))
        self._send_json(200, {"incidents": items})

    def incident(self, p: dict[str, str], _q: dict[str, list[str]], _b: dict[str, Any]) -> None:
        incident_id = int(p["id"])
        item = self.server.api.backend.get_incident(incident_id)
        if item is None:
            raise HttpError(404, f"no incident {incident_id}")
        self._send_json(200, item)

    def ack(self, p: dict[str, str], _q: dict[str, list[str]], b: dict[str, Any]) -> None:
        result = self.server.api.backend.acknowledge(int(p["id"]), ACTOR, _body_comment(b))
        self._send_json(200, result)

    def silence(self, p: dict[str, str], _q: dict[str, list[str]], b: dict[str, Any]) -> None:
        if "duration" not in b:
            raise HttpError(400, 'field "duration" is required (e.g. "1h", "30m" or a number of seconds)')
        raw = b["duration"]
        if not isinstance(raw, str | int | float) or isinstance(raw, bool):
            raise HttpError(400, 'field "duration" must be a string such as "1h" or a number of seconds')
        try:
            seconds = parse_duration(raw)
        except ValueError as exc:
            raise HttpError(400, f'field "duration": {exc}') from None
        if seconds <= 0:
            raise HttpError(400, 'field "duration" must be positive')
        result = self.server.api.backend.silence(int(p["id"]), ACTOR, seconds, _body_comment(b))
        self._send_json(200, result)

    def actions(self, _p: dict[str, str], q: dict[str, list[str]], _b: dict[str, Any]) -> None:
        items = self.server.api.backend.list_actions(_query_str(q, "state"), _query_limit(q))
        self._send_json(200, {"actions": items})

    def approve(self, p: dict[str, str], _q: dict[str, list[str]], _b: dict[str, Any]) -> None:
        self._send_json(200, self.server.api.backend.approve(int(p["id"]), ACTOR, True))

    def deny(self, p: dict[str, str], _q: dict[str, list[str]], _b: dict[str, Any]) -> None:
        self._send_json(200, self.server.api.backend.approve(int(p["id"]), ACTOR, False))

    def pause(self, _p: dict[str, str], _q: dict[str, list[str]], _b: dict[str, Any]) -> None:
        backend = self.server.api.backend
        backend.set_paused(True, ACTOR)
        self._send_json(200, {"paused": backend.paused()})

    def resume(self, _p: dict[str, str], _q: dict[str, list[str]], _b: dict[str, Any]) -> None:
        backend = self.server.api.backend
        backend.set_paused(False, ACTOR)
        self._send_json(200, {"paused": backend.paused()})

    def status(self, _p: dict[str, str], _q: dict[str, list[str]], _b: dict[str, Any]) -> None:
        self._send_json(200, {"paused": self.server.api.backend.paused(), "version": aiops.__version__})

    def ingest(self, _p: dict[str, str], _q: dict[str, list[str]], b: dict[str, Any]) -> None:
        self._store_pushed(b, parse_ingest)

    def alertmanager(self, _p: dict[str, str], _q: dict[str, list[str]], b: dict[str, Any]) -> None:
        self._store_pushed(b, parse_alertmanager)

    def _store_pushed(self, body: dict[str, Any], parse: Callable[[dict[str, Any], float], list[_Row]]) -> None:
        """Validate (400 naming the field), store durably, then answer 202: a 2xx means it is in the store."""
        backend = self.server.api.backend
        if not isinstance(backend, IngestBackend):
            raise HttpError(501, "this server has no store to ingest into")
        if not body:
            raise HttpError(400, "empty body: send a JSON object")
        try:
            rows = parse(body, time.time())
        except ValueError as exc:
            raise HttpError(400, str(exc)) from None
        self._send_json(202, backend.append_events(rows))


    # -- signed approval links (aiops/approval_links.py) ------------------------------------------------------
    def _checked_link(self, p: dict[str, str], q: dict[str, list[str]]) -> tuple[int, str]:
        from aiops.approval_links import verify

        token = self.server.api.token
        if token is None:
            raise HttpError(403, "approval links need server.token (or token_file / AIOPS_API_TOKEN)")
        action_id = int(p["id"])
        decision = (q.get("decision") or [""])[0]
        why = verify(token, action_id, decision, (q.get("expires") or [""])[0], (q.get("sig") or [""])[0])
        if why is not None:
            raise HttpError(403, f"invalid approval link: {why}")
        return action_id, decision

    def decide_page(self, p: dict[str, str], q: dict[str, list[str]], _b: dict[str, Any]) -> None:
        """GET shows a confirmation page only: link previews and prefetchers must never decide anything."""
        action_id, decision = self._checked_link(p, q)
        verb = "Approve" if decision == "approve" else "Deny"
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>aiops: "
            f"{verb.lower()} action {action_id}</title></head><body style='font-family:sans-serif'>"
            f"<h1>{verb} action {action_id}?</h1><p>This decides the remediation waiting for approval.</p>"
            f"<form method='post'><button type='submit'>{verb} action {action_id}</button></form></body></html>"
        )
        self._send(200, page.encode(), "text/html; charset=utf-8")

    def decide(self, p: dict[str, str], q: dict[str, list[str]], _b: dict[str, Any]) -> None:
        action_id, decision = self._checked_link(p, q)
        result = self.server.api.backend.approve(action_id, "approval-link", decision == "approve")
        state = html.escape(str(result.get("state", "")))
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>aiops</title></head>"
            f"<body style='font-family:sans-serif'><h1>Action {action_id}: {state}</h1></body></html>"
        )
        self._send(200, page.encode(), "text/html; charset=utf-8")


def _route(method: str, pattern: str, handler: _Handler) -> tuple[str, re.Pattern[str], _Handler]:
    return method, re.compile(pattern), handler


_ID = r"(?P<id>[0-9]{1,18})"
_ROUTES: Final = (
    _route("GET", r"/metrics", _RequestHandler.metrics),
    _route("GET", r"/livez", _RequestHandler.livez),
    _route("GET", r"/readyz", _RequestHandler.readyz),
    _route("POST", r"/-/reload", _RequestHandler.reload),
    _route("GET", r"/api/v1/incidents", _RequestHandler.incidents),
    _route("GET", rf"/api/v1/incidents/{_ID}", _RequestHandler.incident),
    _route("POST", rf"/api/v1/incidents/{_ID}/ack", _RequestHandler.ack),
    _route("POST", rf"/api/v1/incidents/{_ID}/silence", _RequestHandler.silence),
    _route("GET", r"/api/v1/actions", _RequestHandler.actions),
    _route("POST", rf"/api/v1/actions/{_ID}/approve", _RequestHandler.approve),
    _route("POST", rf"/api/v1/actions/{_ID}/deny", _RequestHandler.deny),
    _route("POST", r"/api/v1/pause", _RequestHandler.pause),
    _route("POST", r"/api/v1/resume", _RequestHandler.resume),
    _route("GET", r"/api/v1/status", _RequestHandler.status),
    _route("POST", r"/api/v1/ingest", _RequestHandler.ingest),
    _route("GET", rf"/decide/{_ID}", _RequestHandler.decide_page),
    _route("POST", rf"/decide/{_ID}", _RequestHandler.decide),
    _route("POST", r"/api/v1/alertmanager", _RequestHandler.alertmanager),
)


def _status_for(exc: AiopsError) -> int:
    """not_found -> 404; a request the backend calls invalid -> 400; any other refusal is a conflict."""
    if exc.reason == "not_found":
        return 404
    if exc.reason in ("invalid", "bad_request", "validation"):
        return 400
    return 409


def _query_str(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    if not values or not values[-1].strip():
        return None
    return values[-1].strip()


def _query_limit(query: dict[str, list[str]]) -> int:
    raw = _query_str(query, "limit")
    if raw is None:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise HttpError(400, f"limit must be an integer between 1 and {MAX_LIMIT}, not {raw!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise HttpError(400, f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
    return limit


def _body_comment(body: dict[str, Any]) -> str:
    comment = body.get("comment", "")
    if comment is None:
        return ""
    if not isinstance(comment, str):
        raise HttpError(400, 'field "comment" must be a string')
    return comment
