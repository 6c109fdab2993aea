"""``GET /livez`` latency and throughput of the running daemon: a new TCP connection per request (the baseline,
measured in the same run) against one kept-alive connection.

Why: a server that writes headers and body in two segments without ``TCP_NODELAY`` makes every kept-alive
response wait for the client's delayed ACK (~40 ms), so a kept-alive connection, which should be the fast
path, becomes 100x slower than a new one. The kept-alive p50 must stay under 2 ms.

    .venv/bin/python benchmarks/http_keepalive.py --requests 2000

The daemon runs as its own process (``python -m aiops run``), with one cheap check, exactly as deployed; the
client is ``http.client`` (lighter than requests, so the client's own cost stays small).
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = """
store: {{url: "sqlite:///{work}/aiops.db"}}
state_dir: {work}/state
checks:
  - name: host
    every: 10s
    source: {{type: host, metrics: [host_cpu_percent]}}
    detectors: [{{type: threshold, above: 1000}}]
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the daemon exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("the daemon was not ready in time")


def _new_connection(port: int, n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/livez")
        resp = conn.getresponse()
        resp.read()
        conn.close()
        assert resp.status == 200
        times.append(time.perf_counter() - started)
    return times


def _kept_alive(port: int, n: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    times = []
    for _ in range(n):
        started = time.perf_counter()
        conn.request("GET", "/livez")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200 and not resp.will_close
        times.append(time.perf_counter() - started)
    conn.close()
    return times


def _summary(times: list[float]) -> tuple[float, float, float]:
    ordered = sorted(times)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return p50 * 1000, p99 * 1000, len(times) / sum(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per mode")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aiops-http-bench-"))
    config = work / "aiops.yaml"
    config.write_text(CONFIG.format(work=work))
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiops", "run", "--config", str(config), "--listen", f"127.0.0.1:{port}"],
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "AIOPS_LOG_JSON": "1"},
    )
    try:
        _wait_ready(port, proc)
        _new_connection(port, 100)  # warm-up
        _kept_alive(port, 100)
        new = _summary(_new_connection(port, args.requests))
        kept = _summary(_kept_alive(port, args.requests))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    print(f"GET /livez, {args.requests} requests per mode")
    print("| connection | p50 ms | p99 ms | req/s | p50 vs new connection | req/s vs new connection |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, (p50, p99, rate) in (("new per request (baseline)", new), ("kept alive", kept)):
        print(f"| {name} | {p50:.2f} | {p99:.2f} | {rate:.0f} | {p50 / new[0]:.2f}x | {rate / new[2]:.2f}x |")
    verdict = "under" if kept[0] < 2.0 else "OVER"
    print(f"kept-alive p50 {kept[0]:.2f} ms: {verdict} the 2 ms budget")


if __name__ == "__main__":
    main()
