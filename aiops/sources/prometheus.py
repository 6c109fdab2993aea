"""Series from a Prometheus-compatible HTTP API (Prometheus, Thanos, Mimir, VictoriaMetrics)."""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import requests
from pydantic import BaseModel, ConfigDict, Field, model_validator

from aiops.durations import Duration
from aiops.errors import SourceError
from aiops.plugins import Source
from aiops.redact import redact
from aiops.replay import SeriesReplay
from aiops.sources._common import Problems, read_secret
from aiops.sources._http import answer_failed, request_failed
from aiops.types import Frame, Series

MAX_POINTS = 11_000  # Prometheus refuses range queries of more points per series than this
# errorType values after which the same query can only fail again
_FINAL_ERRORS = frozenset({"bad_data", "not_found", "not_acceptable"})


class BasicAuth(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(description="user name")
    password: str | None = Field(None, description="password (prefer password_file)")
    password_file: str | None = Field(None, description="file holding the password")


class TlsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ca_file: str | None = Field(None, description="CA bundle to verify the server with")
    cert_file: str | None = Field(None, description="client certificate (mutual TLS)")
    key_file: str | None = Field(None, description="client key (mutual TLS)")
    insecure_skip_verify: bool = Field(False, description="do not verify the server certificate (tests only)")


class PrometheusParams(BaseModel):
    """Parameters of the prometheus source."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="base URL of the Prometheus API, e.g. http://prometheus:9090")
    query: str = Field(min_length=1, description="PromQL expression")
    mode: Literal["instant", "range"] = Field("instant", description="instant: one point per series; range: all")
    step: Duration = Field(15.0, gt=0, description="range queries: resolution step, e.g. 15s")
    lookback: Duration = Field(300.0, gt=0, description="range queries: window of the first tick, e.g. 5m")
    name: str | None = Field(None, description="series name (default: the result's __name__, else 'value')")
    timeout: Duration = Field(10.0, gt=0, description="for the whole request, e.g. 10s; also sent as the query timeout")
    bearer_token: str | None = Field(None, description="bearer token (prefer bearer_token_file)")
    bearer_token_file: str | None = Field(None, description="file holding the bearer token, re-read every tick")
    basic_auth: BasicAuth | None = Field(None, description="HTTP basic authentication")
    tls: TlsConfig = Field(default_factory=lambda: TlsConfig.model_validate({}), description="TLS options")
    headers: dict[str, str] = Field(default_factory=dict, description="extra HTTP headers (e.g. X-Scope-OrgID)")

    @model_validator(mode="after")
    def _one_auth(self) -> PrometheusParams:
        if (self.bearer_token or self.bearer_token_file) and self.basic_auth:
            raise ValueError("use either bearer_token(_file) or basic_auth, not both")
        return self


class PrometheusSource(Source):
    """Runs a PromQL query (instant or range) against Prometheus; one series per label set.

    Why: most SRE telemetry already lives in Prometheus. Labels of each result series are carried into the
    frame's series, hence into findings and incident fingerprints, so ``rate(errors[5m])`` over ten model
    replicas gives ten independent incidents. Prometheus error envelopes (``status: error``, ``errorType``,
    ``error``) become a :class:`SourceError` that says whether retrying can help (``bad_data`` cannot,
    ``timeout``/``unavailable``/5xx can); ``warnings`` and NaN/inf samples become ``data_quality`` problems.
    A range query asks for ``(since, until]`` (the first tick: ``lookback``), with the step widened if the
    window would exceed Prometheus' 11,000 points per series.
    """

    Params: ClassVar[type[BaseModel]] = PrometheusParams
    params: PrometheusParams

    @classmethod
    def test_params(cls) -> list[dict[str, Any]]:
        return [{"url": "http://127.0.0.1:9", "query": "up"}]

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._session = requests.Session()

    def collect(self, since: float | None, until: float) -> Frame:
        p = self.params
        problems = Problems("prometheus", until)
        query: dict[str, Any] = {"query": p.query, "timeout": f"{p.timeout:g}s"}
        if p.mode == "instant":
            path = "/api/v1/query"
            query["time"] = _fmt(until)
        else:
            path = "/api/v1/query_range"
            # After a long outage, catch up at most 100 lookbacks rather than ask for days of points.
            start = until - p.lookback if since is None else max(since, until - 100 * p.lookback)
            step = max(p.step, (until - start) / MAX_POINTS)
            query.update(start=_fmt(start), end=_fmt(until), step=f"{step:g}")
        data = self._get(path, query)
        for warning in data.get("warnings") or []:
            problems.add("query_warning", str(warning))
        result = data.get("data")
        if not isinstance(result, dict) or "resultType" not in result:
            raise SourceError(f"prometheus {p.url}: response has no data.resultType", recoverable=False)
        series = self._series(result, since if p.mode == "range" else None, problems)
        return Frame(source="prometheus", collected_at=until, series=tuple(series), problems=problems.findings())

    def history(self, since: float, until: float, every: float) -> SeriesReplay:
        """The points of ``(since, until]`` for a backtest, read with ``query_range`` in chunks of at most
        MAX_POINTS points per series. An instant query is evaluated on the ticks' grid (step ``every``, from
        ``since + every``), which is what the live source asks at each tick; a range query at its own step."""
        p = self.params
        step = every if p.mode == "instant" else p.step
        first = since + step if p.mode == "instant" else since - p.lookback
        problems = Problems("prometheus", until)
        merged: dict[str, tuple[Series, list[float], list[float]]] = {}
        start = first
        while start <= until:
            end = min(until, start + step * (MAX_POINTS - 1))
            query = {"query": p.query, "timeout": f"{p.timeout:g}s", "start": _fmt(start), "end": _fmt(end)}
            data = self._get("/api/v1/query_range", {**query, "step": f"{step:g}"})
            result = data.get("data")
            if not isinstance(result, dict) or "resultType" not in result:
                raise SourceError(f"prometheus {p.url}: response has no data.resultType", recoverable=False)
            for s in self._series(result, None, problems):
                _, ts, vs = merged.setdefault(s.key, (s, [], []))
                ts.extend(s.timestamps)
                vs.extend(s.values)
            start = end + step
        series = [Series(s.name, ts, vs, s.labels) for s, ts, vs in merged.values()]
        return SeriesReplay("prometheus", series, first_window=step if p.mode == "instant" else p.lookback)

    # ------------------------------------------------------------------ internals

    def _get(self, path: str, query: dict[str, Any]) -> dict[str, Any]:
        p = self.params
        url = p.url.rstrip("/") + path
        headers = {"Accept": "application/json", **p.headers}
        auth: tuple[str, str] | None = None
        token = read_secret(p.bearer_token, p.bearer_token_file, None, "prometheus bearer token")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if p.basic_auth:
            password = read_secret(p.basic_auth.password, p.basic_auth.password_file, None, "prometheus password")
            auth = (p.basic_auth.username, password or "")
        verify: bool | str = p.tls.ca_file or not p.tls.insecure_skip_verify
        cert = (p.tls.cert_file, p.tls.key_file) if p.tls.cert_file and p.tls.key_file else p.tls.cert_file
        where = f"prometheus {redact(p.url)}"
        try:
            response = self._session.get(
                url, params=query, headers=headers, auth=auth, timeout=p.timeout, verify=verify, cert=cert
            )
        except requests.RequestException as exc:
            raise request_failed(where, exc, p.timeout) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("status") == "error":
            kind = str(body.get("errorType", "unknown"))
            raise SourceError(
                f"{where}: query failed ({kind}, HTTP {response.status_code}): {body.get('error', '')}",
                recoverable=kind not in _FINAL_ERRORS,
                reason=f"prometheus_{kind}",
            )
        failed = answer_failed(where, response, ", not a Prometheus answer")
        if failed is not None:
            raise failed
        if not isinstance(body, dict) or body.get("status") != "success":
            text = redact(response.text[:200])
            raise SourceError(f"{where}: HTTP {response.status_code}, not a Prometheus answer: {text!r}")
        return body

    def _series(self, result: dict[str, Any], since: float | None, problems: Problems) -> list[Series]:
        kind, items = result["resultType"], result.get("result")
        if kind in ("scalar", "string"):
            items = [{"metric": {}, "value": items}]
            kind = "vector"
        if not isinstance(items, list):
            raise SourceError("prometheus: data.result is not a list", recoverable=False)
        out = []
        for item in items:
            if not isinstance(item, dict):
                problems.add("malformed_result", repr(item)[:200])
                continue
            metric = {str(k): str(v) for k, v in dict(item.get("metric") or {}).items()}
            name = self.params.name or metric.pop("__name__", None) or "value"
            metric.pop("__name__", None)
            raw: list[Any] = [item.get("value")] if kind == "vector" else list(item.get("values") or [])
            ts: list[float] = []
            vs: list[float] = []
            for sample in raw:
                try:
                    t, v = float(sample[0]), float(sample[1])
                except (TypeError, ValueError, IndexError):
                    problems.add("malformed_sample", f"{name}{metric}: {sample!r}"[:200])
                    continue
                if since is not None and t <= since:
                    continue
                if not math.isfinite(v):
                    problems.add("non_finite", f"{name}{metric} at {t:g}: {sample[1]}")
                    continue
                ts.append(t)
                vs.append(v)
            out.append(Series(name=name, timestamps=tuple(ts), values=tuple(vs), labels=metric))
        return out


def _fmt(ts: float) -> str:
    return f"{ts:.3f}"
