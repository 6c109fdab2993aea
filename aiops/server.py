"""The daemon's HTTP surface: ``/metrics``, health probes, a small JSON API, signed approval links and the web
console (``/ui/``, :mod:`aiops.console`), as an ASGI app (:mod:`aiops.http.app`, on Starlette) served by
uvicorn on a background thread.

Why a module of its own, above :mod:`aiops.http` and :mod:`aiops.console`: it assembles the two (the console
uses the API's backend, tokens and problem answers), so living inside either would make them a cycle.

Why a thread and not uvicorn in the main thread: the main thread belongs to the daemon, which owns the
signals (SIGTERM stops within 10 s, SIGHUP reloads) and tells systemd about its state. uvicorn installs
signal handlers only when it runs in the main thread, so on its own thread it leaves the daemon's alone; it
is stopped by :meth:`ApiServer.stop` instead. Its access log is off (requests are logged at debug by the
app, through structlog); of its own messages only errors are kept, and they go through the daemon's logging
chain.

Security model: reads are open (bind to 127.0.0.1, the default, or put a proxy in front); every write needs
``Authorization: Bearer <server.token>``, compared in constant time. Without a configured token the write
endpoints are off (403 saying how to enable them), except ``POST /-/reload`` on a loopback listener, which
is what ``curl -X POST localhost:9464/-/reload`` from the same host expects.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from typing import Final

import structlog
import uvicorn
from prometheus_client import CollectorRegistry

import aiops
from aiops.console.auth import ConsoleAuth
from aiops.console.pages import ConsoleContext
from aiops.console.views import console_routes
from aiops.errors import AiopsError
from aiops.http.app import MAX_BODY, build_app
from aiops.http.backend import ApiBackend
from aiops.http.endpoints import ENDPOINTS, ApiContext
from aiops.http.openapi import spec_endpoint
from aiops.logs import add_secrets

__all__ = ["MAX_BODY", "ApiServer", "is_loopback", "parse_listen"]

KEEP_ALIVE: Final = 30  # seconds an idle kept-alive connection is held open
STOP_GRACE: Final = 2  # seconds requests in flight get on stop(); the daemon's 10 s budget includes it

log = structlog.get_logger("aiops.http")


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


class ApiServer:
    """Serves ``registry`` on ``/metrics`` and ``backend`` on the API, from a uvicorn thread.

    ``start()`` binds (``port 0`` picks a free port, see :attr:`address`) and returns once the server
    accepts connections; ``stop()`` closes the listener and the connections. Calls on ``backend`` come from
    several worker threads at once.
    """

    def __init__(
        self,
        backend: ApiBackend,
        registry: CollectorRegistry,
        listen: str = "127.0.0.1:9464",
        token: str | None = None,
        ui_read_token: str | None = None,
    ) -> None:
        self.backend = backend
        self.registry = registry
        self.listen = listen
        self.token = token or None
        self.ui_read_token = ui_read_token or None
        # whoever logs a request or an error, the tokens never show
        add_secrets([t for t in (self.token, self.ui_read_token) if t])
        self._host, self._port = parse_listen(listen)
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def loopback(self) -> bool:
        return is_loopback(self._host)

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) actually bound; the real port when ``listen`` asked for port 0."""
        if self._socket is None:
            return self._host, self._port
        host, port = self._socket.getsockname()[:2]
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
        sock = self._bind()
        ctx = ApiContext(self.backend, self.token, self.loopback)
        console = ConsoleContext(self.backend, ConsoleAuth.create(self.token, self.ui_read_token, self.loopback))
        app = build_app(ctx, self.registry, [*ENDPOINTS, spec_endpoint(ENDPOINTS)], console_routes(console))
        config = uvicorn.Config(
            app,
            http="h11",  # the pure-Python parser, whatever else is installed: one behaviour to test
            ws="none",
            lifespan="off",
            log_config=None,  # keep the daemon's logging configuration
            access_log=False,
            server_header=False,
            headers=[("server", f"aiops/{aiops.__version__}")],
            proxy_headers=False,  # the client address is the peer's: no proxy is trusted by default
            timeout_keep_alive=KEEP_ALIVE,
            timeout_graceful_shutdown=STOP_GRACE,
        )
        # Only uvicorn's errors: its info lines ("Started server process") are noise in the daemon's log, and
        # its per-request warning on a malformed request would let any client flood the log.
        logging.getLogger("uvicorn.error").setLevel(logging.ERROR)
        # access_log=False only holds while nothing re-enables propagation of "uvicorn.access" (uvicorn
        # decides per connection from hasHandlers()); requests are logged by the app, so silence it for good.
        logging.getLogger("uvicorn.access").disabled = True
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="aiops-http", daemon=True)
        self._socket, self._server, self._thread = sock, server, thread
        thread.start()
        while not server.started and thread.is_alive():
            thread.join(0.005)
        if not server.started:
            self._socket, self._server, self._thread = None, None, None
            sock.close()
            raise AiopsError(f"cannot serve on {self.listen}: the HTTP server did not start", reason="listen")
        log.info("http.listening", address=self.url)

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        # proto=IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only when the socket
        # says it is TCP; without it, Nagle + delayed ACK hold each kept-alive response for ~40 ms.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart right after a stop
            sock.bind((self._host, self._port))
            sock.listen(128)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise AiopsError(f"cannot listen on {self.listen}: {exc.strerror or exc}", reason="listen") from exc
        return sock

    def stop(self) -> None:
        """Stop accepting, close idle connections, give requests in flight STOP_GRACE seconds."""
        server, thread, sock = self._server, self._thread, self._socket
        if server is None:
            return
        server.should_exit = True
        if thread is not None:
            thread.join(timeout=STOP_GRACE + 0.5)
            if thread.is_alive():
                server.force_exit = True
                thread.join(timeout=0.5)
        if sock is not None:
            sock.close()
        self._server, self._thread, self._socket = None, None, None

    def __enter__(self) -> ApiServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
