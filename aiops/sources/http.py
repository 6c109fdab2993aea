"""Values polled from a JSON HTTP endpoint (a model server's stats, Airflow's REST API), by JSONPath-like selectors."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any, ClassVar

import requests
from pydantic import BaseModel, ConfigDict, Field, field_validator

from aiops.durations import Duration
from aiops.errors import SourceError
from aiops.plugins import Source
from aiops.redact import redact
from aiops.sources._common import Problems, read_secret, rows_frame
from aiops.sources._http import OneUrlAdapter, answer_failed, request_failed, settle_environment
from aiops.sources.ingest import parse_time
from aiops.types import Frame, Series

_TOKEN = re.compile(r"""\.([A-Za-z_][\w\-]*|\*)|\[(\*|-?\d+)\]|\[(?:'([^']*)'|"([^"]*)")\]""")


def compile_path(path: str) -> list[str | int]:
    """Parse a JSONPath-like selector into steps: ``$.a.b``, ``$.items[0]``, ``$.runs[*].state``, ``$['k']``.

    ``*`` (as ``.*`` or ``[*]``) is a wildcard over a list's items or an object's values.

    >>> compile_path("$.dag_runs[*].state"), compile_path("$['p99 ms'][-1]")
    (['dag_runs', '*', 'state'], ['p99 ms', -1])
    """
    text = path.strip()
    if not text.startswith("$"):
        raise ValueError(f"a selector starts with $, e.g. $.stats.latency: {path!r}")
    steps: list[str | int] = []
    pos = 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ValueError(f"cannot parse selector {path!r} at position {pos}: {text[pos : pos + 10]!r}")
        name, index, quoted1, quoted2 = m.groups()
        if index is not None:
            steps.append("*" if index == "*" else int(index))
        else:
            value = name if name is not None else (quoted1 if quoted1 is not None else quoted2)
            steps.append(value)
        pos = m.end()
    return steps


def select(document: Any, steps: list[str | int], trail: str = "$") -> Iterator[tuple[str, Any]]:
    """Every (concrete path, value) the selector reaches in ``document``; missing keys yield nothing.

    >>> list(select({"runs": [{"s": "ok"}, {"s": "failed"}]}, compile_path("$.runs[*].s")))
    [('$.runs[0].s', 'ok'), ('$.runs[1].s', 'failed')]
    """
    if not steps:
        yield trail, document
        return
    step, rest = steps[0], steps[1:]
    if step == "*":
        if isinstance(document, list):
            for i, item in enumerate(document):
                yield from select(item, rest, f"{trail}[{i}]")
        elif isinstance(document, dict):
            for key, item in document.items():
                yield from select(item, rest, f"{trail}.{key}")
    elif isinstance(step, int):
        if isinstance(document, list) and -len(document) <= step < len(document):
            yield from select(document[step], rest, f"{trail}[{step % len(document)}]")
    elif isinstance(document, dict) and step in document:
        yield from select(document[step], rest, f"{trail}.{step}")


class HttpParams(BaseModel):
    """Parameters of the http source."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="the JSON endpoint to GET")
    metrics: dict[str, str] = Field(
        default_factory=dict, description="series name -> selector of numeric value(s), e.g. $.stats.p99_ms"
    )
    rows: str | None = Field(None, description="selector of a list of objects turned into table rows, e.g. $.dag_runs")
    labels: dict[str, str] = Field(default_factory=dict, description="labels added to every series")
    headers: dict[str, str] = Field(default_factory=dict, description="extra request headers")
    bearer_token: str | None = Field(None, description="bearer token (prefer bearer_token_file / bearer_token_env)")
    bearer_token_file: str | None = Field(None, description="file holding the bearer token, re-read every tick")
    bearer_token_env: str | None = Field(None, description="environment variable holding the bearer token")
    username: str | None = Field(None, description="basic auth user (password from password_file/password_env)")
    password_file: str | None = Field(None, description="file holding the basic auth password")
    password_env: str | None = Field(None, description="environment variable holding the basic auth password")
    timeout: Duration = Field(10.0, gt=0, description="for the whole request, e.g. 10s")
    verify_tls: bool | str = Field(True, description="verify the certificate (or path of a CA bundle)")

    @field_validator("metrics")
    @classmethod
    def _selectors(cls, value: dict[str, str]) -> dict[str, str]:
        for selector in value.values():
            compile_path(selector)
        return value

    @field_validator("rows")
    @classmethod
    def _rows(cls, value: str | None) -> str | None:
        if value is not None:
            compile_path(value)
        return value


class HttpSource(Source):
    """Numbers (and rows) extracted from a JSON endpoint polled every tick.

    Why: many services expose their health only as JSON (a model server's ``/stats``, Airflow's
    ``/api/v1/dags/{id}/dagRuns``). Each ``metrics`` selector becomes a series at the poll time; a selector
    with a wildcard yields one series per match, labelled ``path`` with the concrete path. Booleans count as
    1/0. ``rows`` turns a list of objects into table rows (e.g. DAG runs with ``state`` and ``duration``) for
    the data-quality and table detectors. Non-numeric values and selectors that match nothing are
    ``data_quality`` problems; a dead, slow, non-2xx or non-JSON endpoint is a ``SourceError``, recoverable
    as :mod:`aiops.http_outcome` says (401/403 and other 4xx are not: the same request fails again).
    """

    Params: ClassVar[type[BaseModel]] = HttpParams
    params: HttpParams

    @classmethod
    def test_params(cls) -> list[dict[str, Any]]:
        return [{"url": "http://127.0.0.1:9/metrics"}]

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._metrics = {name: compile_path(sel) for name, sel in self.params.metrics.items()}
        self._rows = compile_path(self.params.rows) if self.params.rows else None
        self._session = requests.Session()
        adapter = OneUrlAdapter()
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._environment = settle_environment(self._session, self.params.url, self.params.verify_tls)
        self._where = f"http source {redact(self.params.url)}"  # what its errors name (redacted once, not per poll)
        # the request as last prepared, and the credentials it was prepared with (see _prepared)
        self._request: tuple[tuple[str | None, tuple[str, str] | None], requests.PreparedRequest] | None = None

    def collect(self, since: float | None, until: float) -> Frame:
        document = self._fetch()
        problems = Problems("http", until)
        series: list[Series] = []
        for name, steps in self._metrics.items():
            matches = list(select(document, steps))
            if not matches:
                problems.add("no_match", f"{name}: {self.params.metrics[name]}")
            wildcard = "*" in steps
            for path, value in matches:
                number = _number(value)
                if number is None:
                    problems.add("non_numeric", f"{name} at {path}: {str(value)[:80]!r}")
                    continue
                labels = {**self.params.labels, **({"path": path} if wildcard else {})}
                series.append(Series(name=name, timestamps=(until,), values=(number,), labels=labels))
        rows: list[dict[str, Any]] = []
        if self._rows is not None:
            for path, value in select(document, self._rows):
                items = value if isinstance(value, list) else [value]
                for item in items:
                    if isinstance(item, dict):
                        rows.append(dict(item))
                    else:
                        problems.add("not_an_object", f"{path}: {str(item)[:80]!r}")
        return rows_frame("http", until, series, rows, problems)

    def _fetch(self) -> Any:
        p = self.params
        token = read_secret(p.bearer_token, p.bearer_token_file, p.bearer_token_env, "http source bearer token")
        auth: tuple[str, str] | None = None
        if p.username:
            auth = (p.username, read_secret(None, p.password_file, p.password_env, "http source password") or "")
        where = self._where
        try:
            response = self._session.send(self._prepared(token, auth), timeout=p.timeout, **self._environment)
        except requests.RequestException as exc:
            raise request_failed(where, exc, p.timeout) from None
        failed = answer_failed(where, response)
        if failed is not None:
            raise failed
        try:
            return response.json()
        except ValueError:
            raise SourceError(f"{where}: the answer is not JSON: {redact(response.text[:100])!r}") from None

    def _prepared(self, token: str | None, auth: tuple[str, str] | None) -> requests.PreparedRequest:
        """The GET to send, prepared again only when the credentials changed (a token file is re-read every tick)
        or the server set cookies (they go with the next request, as a session sends them).

        Why not ``Session.get`` every tick: preparing a request (parsing the URL, merging the session's headers,
        auth and cookies into it) was about a tenth of a replica's CPU polling local endpoints, and for
        one URL polled with the same credentials it prepares the same request every time."""
        key = (token, auth)
        if self._request is not None and self._request[0] == key and not self._session.cookies:
            return self._request[1]
        p = self.params
        headers = {"Accept": "application/json", **p.headers}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        prepared = self._session.prepare_request(requests.Request("GET", p.url, headers=headers, auth=auth))
        self._request = (key, prepared)
        return prepared


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        out = float(value)
    elif isinstance(value, str):
        try:
            out = float(value)
        except ValueError:
            try:
                out = parse_time(value)  # Airflow-style ISO times become epoch seconds
            except ValueError:
                return None
    else:
        return None
    return out if math.isfinite(out) else None
