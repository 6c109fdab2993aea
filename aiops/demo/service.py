"""The demo's model service: a real HTTP server serving the registry's ``champion`` with Prometheus metrics.

Run as its own process (``python -m aiops.demo.service --dir D --port P``), like a model server next to
aiops. Endpoints:

- ``POST /predict`` ``{"rows": [{feature: value, ...}, ...]}`` -> ``{"version", "predictions", "scores"}``
- ``GET /metrics``: prometheus-client exposition (request latency histogram, requests by code, the
  prediction-score distribution, the served version), for a real Prometheus to scrape;
- ``GET /stats``: the same figures over the last ``--window`` seconds as JSON (p95 latency, error rate),
  which the demo's daemon polls with the ``http`` source because the demo runs no Prometheus server;
- ``POST /-/reload``: load whatever ``champion`` points at now (the retrain/rollback reload hook);
- ``POST /-/fault`` ``{"error_rate": 0.5}``: the orchestrator's fault injection (an upstream that flaps);
- ``POST /-/recycle``: "recycle the worker pool" (counts; it does not fix an upstream problem);
- ``GET /ready``: 200 once a model is loaded.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from aiops.demo.common import FEATURES, MODEL


class ModelService:
    """State of the service: the loaded model, the fault switches and the recent requests."""

    def __init__(self, registry_dir: Path, window: float) -> None:
        from aiops.registry import FilesystemRegistry

        self.registry = FilesystemRegistry(registry_dir)
        self.window = window
        self.lock = threading.Lock()
        self.model: Any = None
        self.version: str | None = None
        self.error_rate = 0.0
        self.recycled = 0
        self.recent: deque[tuple[float, float, bool]] = deque(maxlen=20_000)  # (time, seconds, error)
        self.metrics = CollectorRegistry()
        self.latency = Histogram(
            "demo_request_latency_seconds",
            "Prediction request latency.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=self.metrics,
        )
        self.requests = Counter(
            "demo_requests_total", "Prediction requests by HTTP code.", ["code"], registry=self.metrics
        )
        self.scores = Histogram(
            "demo_prediction_score",
            "Predicted probability of the positive class (the prediction distribution).",
            buckets=tuple(i / 10 for i in range(1, 11)),
            registry=self.metrics,
        )
        self.served = Gauge("demo_model_version", "Registry version being served.", registry=self.metrics)
        self.rng = random.Random(7)

    def reload(self) -> str:
        version = self.registry.alias(MODEL, "champion")
        if version is None:
            raise RuntimeError(f"model {MODEL} has no champion")
        model = self.registry.load(MODEL, version)
        with self.lock:
            self.model, self.version = model, version
        self.served.set(float(version))
        return str(version)

    def predict(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import pandas as pd

        with self.lock:
            model, version = self.model, self.version
        frame = pd.DataFrame([{f: float(r.get(f, 0.0)) for f in FEATURES} for r in rows], columns=FEATURES)
        proba = model.predict_proba(frame)[:, 1]
        predictions = [int(p >= 0.5) for p in proba]
        for p in proba:
            self.scores.observe(float(p))
        return {"version": version, "predictions": predictions, "scores": [round(float(p), 5) for p in proba]}

    def record(self, seconds: float, error: bool) -> None:
        self.latency.observe(seconds)
        self.requests.labels(code="500" if error else "200").inc()
        with self.lock:
            self.recent.append((time.time(), seconds, error))

    def stats(self) -> dict[str, Any]:
        now = time.time()
        with self.lock:
            recent = [(s, e) for t, s, e in self.recent if now - t <= self.window]
            version = self.version
        ok = sorted(s for s, e in recent if not e)
        p95 = ok[min(len(ok) - 1, int(0.95 * len(ok)))] * 1000.0 if ok else 0.0
        errors = sum(1 for _, e in recent if e)
        return {
            "p95_latency_ms": round(p95, 3),
            "error_rate": round(errors / len(recent), 4) if recent else 0.0,
            "requests": len(recent),
            "version": version,
            "window_seconds": self.window,
            "recycled": self.recycled,
        }


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _json(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            return json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return {}

    def do_GET(self) -> None:
        svc = self.server.service
        if self.path == "/metrics":
            data = generate_latest(svc.metrics)
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif self.path == "/stats":
            self._json(200, svc.stats())
        elif self.path == "/ready":
            self._json(200 if svc.model is not None else 503, {"version": svc.version})
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        svc = self.server.service
        body = self._body()
        if self.path == "/predict":
            started = time.perf_counter()
            if svc.rng.random() < svc.error_rate:
                svc.record(time.perf_counter() - started, True)
                self._json(500, {"error": "upstream feature store timed out"})
                return
            try:
                answer = svc.predict(list(body.get("rows") or []))
            except Exception as exc:  # a broken model must answer 500, not kill the server
                svc.record(time.perf_counter() - started, True)
                self._json(500, {"error": f"{type(exc).__name__}: {exc}"})
                return
            svc.record(time.perf_counter() - started, False)
            self._json(200, answer)
        elif self.path == "/-/reload":
            try:
                self._json(200, {"version": svc.reload()})
            except Exception as exc:
                self._json(500, {"error": str(exc)})
        elif self.path == "/-/fault":
            svc.error_rate = float(body.get("error_rate", 0.0))
            self._json(200, {"error_rate": svc.error_rate})
        elif self.path == "/-/recycle":
            svc.recycled += 1
            self._json(200, {"recycled": svc.recycled})
        else:
            self._json(404, {"error": "not found"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    service: ModelService


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aiops.demo.service", description="the demo's model service")
    parser.add_argument("--registry", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--window", type=float, default=1.0, help="seconds of requests /stats summarises")
    ns = parser.parse_args(argv)
    service = ModelService(Path(ns.registry), ns.window)
    service.reload()
    server = _Server(("127.0.0.1", ns.port), _Handler)
    server.service = service
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
