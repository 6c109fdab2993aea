"""A JSON endpoint that waits ``--latency`` seconds before each answer: the I/O-bound source of scale_replicas.py.

    .venv/bin/python benchmarks/slow_source.py --latency 0.05      # prints "port N", serves until killed

Why a process of its own, on asyncio: the replicas' checks must wait on the source, never queue for it. A
thread per connection (``ThreadingHTTPServer``) in the benchmark's own process shared one GIL with the
benchmark's scrapes and cost a thread switch per request; here every wait is a timer on one event loop
(hundreds of requests in flight cost nothing while they wait), the answer is a fixed byte string, and the
process's CPU is measured apart (psutil, by the benchmark), so a reader can see the source was not the limit.

HTTP/1.1 with keep-alive, GET only, no request body: exactly what the ``http`` source sends. ``GET /-/count``
answers at once with the number of source requests answered so far (``{"requests": N}``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json

ANSWER = b'{"value": 1}'
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"


class SlowSource(asyncio.Protocol):
    """One client connection: each request is answered ``latency`` seconds after it arrived, in order."""

    requests = 0  # answered source requests, over every connection

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        loop = asyncio.get_running_loop()
        while b"\r\n\r\n" in self.buffer:
            head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            path = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b"/"
            if path == b"/-/count":
                self._answer(json.dumps({"requests": SlowSource.requests}).encode(), count=False)
            else:
                loop.call_later(self.latency, self._answer, ANSWER, True)

    def _answer(self, body: bytes, count: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if count:
            SlowSource.requests += 1
        self.transport.write(HEAD % len(body) + body)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(latency: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SlowSource(latency), "127.0.0.1", 0, backlog=1024)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds each answer waits")
    args = parser.parse_args()
    if args.latency < 0:
        parser.error("--latency must be at least 0")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.latency))


if __name__ == "__main__":
    main()
