"""The web console over real HTTP (``requests``) against the in-memory backend of the API tests: who may read,
who may change things, CSRF, cookies; and the evidence plots. The browser tests are in tests/e2e."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from aiops.config.loader import ui_read_token
from aiops.config.models import Settings
from aiops.console.auth import SESSION_SECONDS, ConsoleAuth, Role
from aiops.console.evidence import incident_plots
from aiops.errors import AiopsError
from aiops.series_history import SeriesHistory
from aiops.server import ApiServer
from aiops.types import Frame, Series
from tests.unit.test_http import TOKEN, FakeBackend

READ_TOKEN = "r3ad-only-t0ken"


def _server(backend: FakeBackend, registry: CollectorRegistry, **kw: Any) -> Iterator[ApiServer]:
    server = ApiServer(backend, registry, listen=kw.pop("listen", "127.0.0.1:0"), **kw)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeBackend()
    fake.incidents[1].update(check_name="cpu", summary="cpu = 97 is anomalous", opened_at=time.time() - 60)
    fake.actions[10].update(action_label="restart", target="svc", plan={"action": "restart"})
    return fake


@pytest.fixture
def console(backend: FakeBackend, registry: CollectorRegistry) -> Iterator[str]:
    """A loopback console with a write token and no read token: reads open, writes need a login."""
    for server in _server(backend, registry, token=TOKEN):
        yield server.url


@pytest.fixture
def guarded(backend: FakeBackend, registry: CollectorRegistry) -> Iterator[str]:
    """A console on every interface (not loopback) with a read token: reads need a login too."""
    for server in _server(backend, registry, listen="0.0.0.0:0", token=TOKEN, ui_read_token=READ_TOKEN):
        yield server.url


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
    assert found, "no CSRF token in the page"
    return found.group(1)


def _plain_http(session: requests.Session, response: requests.Response) -> None:
    """Keep the Secure cookies of ``response`` for plain http, as a TLS proxy in front would let them pass."""
    for r in [*response.history, response]:
        for name, value in r.cookies.items():
            session.cookies.set(name, value, path="/ui")


def _login(session: requests.Session, base: str, token: str) -> requests.Response:
    page = session.get(f"{base}/ui/login", timeout=5)
    _plain_http(session, page)
    return session.post(
        f"{base}/ui/login", data={"token": token, "csrf": _csrf(page.text), "next": "/ui/actions"}, timeout=5
    )


def test_reads_are_open_on_loopback_without_a_read_token(console: str, backend: FakeBackend) -> None:
    page = requests.get(f"{console}/ui/incidents", timeout=5)
    assert page.status_code == 200
    assert "cpu = 97 is anomalous" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    detail = requests.get(f"{console}/ui/incidents/1", timeout=5)
    assert detail.status_code == 200 and "Incident #1" in detail.text
    assert requests.get(f"{console}/ui/incidents/99", timeout=5).status_code == 404
    assert requests.get(f"{console}/ui/static/console.css", timeout=5).status_code == 200
    assert requests.get(f"{console}/ui/incidents?state=bogus", timeout=5).status_code == 400
    missing = requests.get(f"{console}/ui/nowhere", timeout=5)
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert requests.post(f"{console}/ui/incidents", timeout=5).status_code == 405


def test_mutations_need_the_write_token_and_a_csrf_token(console: str, backend: FakeBackend) -> None:
    session = requests.Session()
    csrf = _csrf(session.get(f"{console}/ui/login", timeout=5).text)
    # no session: refused, nothing decided
    refused = session.post(f"{console}/ui/actions/10/approve", data={"csrf": csrf}, timeout=5)
    assert refused.status_code == 403
    assert "approve" not in [c[0] for c in backend.calls]
    # a wrong token does not log in
    assert _login(session, console, "wrong").status_code == 401
    assert _login(session, console, TOKEN).url.endswith("/ui/actions?done=login")
    cookie = next(c for c in session.cookies if c.name == "aiops_session")
    assert cookie.has_nonstandard_attr("HttpOnly") and cookie.path == "/ui"
    # logged in, but no or a wrong CSRF token: refused
    assert session.post(f"{console}/ui/actions/10/approve", data={}, timeout=5).status_code == 403
    assert session.post(f"{console}/ui/actions/10/approve", data={"csrf": "0" * 64}, timeout=5).status_code == 403
    # a form posted from another site: refused even with a valid token
    foreign = session.post(
        f"{console}/ui/actions/10/approve", data={"csrf": csrf}, headers={"Origin": "https://evil.example"}, timeout=5
    )
    assert foreign.status_code == 403
    assert "approve" not in [c[0] for c in backend.calls]
    done = session.post(f"{console}/ui/actions/10/approve", data={"csrf": csrf, "next": "/ui/actions"}, timeout=5)
    assert done.status_code == 200 and done.url.endswith("/ui/actions?done=approve")
    assert ("approve", 10, "console", True) in backend.calls
    again = session.post(f"{console}/ui/actions/10/approve", data={"csrf": csrf}, timeout=5)
    assert again.status_code == 409 and "not awaiting approval" in again.text
    silenced = session.post(f"{console}/ui/incidents/1/silence", data={"csrf": csrf, "duration": "4h"}, timeout=5)
    assert silenced.status_code == 200
    assert ("silence", 1, "console", 4 * 3600.0, "") in backend.calls
    bad = session.post(f"{console}/ui/incidents/1/silence", data={"csrf": csrf, "duration": "soon"}, timeout=5)
    assert bad.status_code == 400 and "not a duration" in bad.text
    assert session.post(f"{console}/ui/pause", data={"csrf": csrf}, timeout=5).status_code == 200
    assert backend.is_paused
    out = session.post(f"{console}/ui/logout", data={"csrf": csrf}, timeout=5)
    assert out.url.endswith("/ui/login?done=logout")
    assert not [c for c in session.cookies if c.name == "aiops_session"]
    assert session.post(f"{console}/ui/resume", data={"csrf": csrf}, timeout=5).status_code == 403
    assert backend.is_paused


def test_the_checks_page_shows_last_ticks_without_leaking_sql(console: str, backend: FakeBackend) -> None:
    assert "does not report its checks" in requests.get(f"{console}/ui/checks", timeout=5).text
    error = "(sqlite3.OperationalError) no such table [SQL: SELECT * FROM secret_table]"
    tick = {"schedule": "every 30s", "source": "table", "detectors": ["freshness"], "owner": "data"}
    checks = [{"name": "etl", "health": "error", "last_tick_at": time.time(), "duration": 0.2, "error": error, **tick}]
    backend.list_checks = lambda: [dict(c) for c in checks]  # type: ignore[attr-defined]
    page = requests.get(f"{console}/ui/checks", timeout=5).text
    assert "etl" in page and "failed; see the daemon&#39;s log" in page and "secret_table" not in page


def test_without_a_write_token_the_console_changes_nothing(backend: FakeBackend, registry: CollectorRegistry) -> None:
    for server in _server(backend, registry):
        session = requests.Session()
        csrf = _csrf(session.get(f"{server.url}/ui/login", timeout=5).text)
        refused = session.post(f"{server.url}/ui/incidents/1/ack", data={"csrf": csrf}, timeout=5)
        assert refused.status_code == 403 and "no write token is configured" in refused.text
        assert not [c for c in backend.calls if c[0] == "acknowledge"]


def test_a_read_token_or_a_non_loopback_listener_guards_reads(guarded: str, backend: FakeBackend) -> None:
    session = requests.Session()
    first = session.get(f"{guarded}/ui/incidents", allow_redirects=False, timeout=5)
    assert first.status_code == 303 and first.headers["location"].startswith("/ui/login")
    assert "cpu = 97" not in session.get(f"{guarded}/ui/incidents", timeout=5).text
    login = _login(session, guarded, READ_TOKEN)
    assert login.status_code == 200
    assert "Secure" in login.history[0].headers["set-cookie"]  # a non-loopback listener must sit behind TLS
    _plain_http(session, login)
    assert "cpu = 97 is anomalous" in session.get(f"{guarded}/ui/incidents", timeout=5).text
    csrf = _csrf(session.get(f"{guarded}/ui/actions", timeout=5).text)
    assert session.post(f"{guarded}/ui/actions/10/deny", data={"csrf": csrf}, timeout=5).status_code == 403
    assert not [c for c in backend.calls if c[0] == "approve"]


def test_a_form_without_a_declared_length_or_too_large_is_refused(console: str) -> None:
    chunked = requests.post(f"{console}/ui/pause", data=iter([b"csrf=x"]), timeout=5)
    assert chunked.status_code == 411
    assert requests.post(f"{console}/ui/pause", data={"comment": "x" * 20_000}, timeout=5).status_code == 413


def test_the_read_token_comes_from_the_config_or_its_file(tmp_path: Path) -> None:
    (tmp_path / "read").write_text(" from-file\n")
    settings = Settings.model_validate({"server": {"ui_read_token_file": str(tmp_path / "read")}})
    assert ui_read_token(settings) == "from-file"
    assert ui_read_token(Settings.model_validate({"server": {"ui_read_token": "inline"}})) == "inline"
    assert ui_read_token(Settings.model_validate({})) is None
    missing = Settings.model_validate({"server": {"ui_read_token_file": str(tmp_path / "absent")}})
    with pytest.raises(AiopsError, match=r"server\.ui_read_token_file: cannot read"):
        ui_read_token(missing)


def test_sessions_are_signed_expire_and_end_with_the_write_token() -> None:
    auth = ConsoleAuth.create(TOKEN, READ_TOKEN, loopback=False)
    now = time.time()
    write = auth.new_session(Role.WRITE, now)
    assert auth.session_role(write, now) is Role.WRITE
    assert auth.session_role(auth.new_session(Role.READ, now), now) is Role.READ
    assert auth.session_role(write, now + SESSION_SECONDS + 1) is Role.NONE
    forged = "2." + write.split(".", 1)[1]
    assert auth.session_role(forged.replace(write.split(".")[1], str(int(now) + 10**6)), now) is Role.NONE
    assert auth.session_role("2.9999999999.00.deadbeef", now) is Role.NONE
    assert auth.session_role("", now) is Role.NONE
    rotated = ConsoleAuth.create("another-token", READ_TOKEN, loopback=False)
    assert rotated.session_role(write, now) is Role.NONE
    assert auth.role_for_token(TOKEN) is Role.WRITE and auth.role_for_token(READ_TOKEN) is Role.READ
    assert auth.role_for_token("\udcff") is Role.NONE
    assert not auth.open_reads and ConsoleAuth.create(TOKEN, None, loopback=True).open_reads
    cookie = auth.new_csrf_cookie()
    assert auth.csrf_ok(cookie, auth.csrf_token(cookie))
    assert not auth.csrf_ok(auth.new_csrf_cookie(), auth.csrf_token(cookie))


def test_series_evidence_is_plotted_with_the_detection_and_the_action() -> None:
    opened = 1_700_000_000.0
    finding = {
        "detector": "threshold",
        "labels": {"series": "latency"},
        "evidence": {"value": 1000.0, "timestamp": opened, "limit": 500.0},
    }
    later = {**finding, "evidence": {"value": 900.0, "timestamp": opened + 20, "limit": 500.0}}
    incident = {
        "opened_at": opened,
        "firing_at": opened,
        "evidence": {"findings": [later]},
        "transitions": [
            {"to_state": "firing", "at": opened, "evidence": {"findings": [finding]}},
            {"to_state": "resolved", "at": opened + 40, "evidence": {}},
        ],
        "actions": [
            {"action_label": "restart", "state": "succeeded", "started_at": opened + 25, "finished_at": opened + 27}
        ],
    }
    (plot,) = incident_plots(incident)
    assert plot.svg.startswith("<svg") and "latency" in plot.caption
    for label in ("detected", "restart started", "restart succeeded", "resolved", "limit 500"):
        assert label in plot.svg
    assert plot.svg.count("<circle") == 2


def test_drift_evidence_is_plotted_per_column() -> None:
    columns = {
        "age": {
            "test": "psi",
            "statistic": 0.8,
            "drift": True,
            "reference_values": [1, 2, 3],
            "current_values": [7, 8],
        },
        "income": {"test": "psi", "statistic": 0.01, "drift": False},
    }
    incident = {"evidence": {"findings": [{"detector": "psi", "evidence": {"drift": True, "columns": columns}}]}}
    bars, hist = incident_plots(incident)
    assert "drift statistic per column (psi)" in bars.caption and "age" in bars.svg and "income" in bars.svg
    assert hist.caption.startswith("age: reference")
    assert incident_plots({"evidence": {"findings": [{"evidence": {"note": "no numbers"}}]}}) == []


def test_recorded_series_are_bounded_and_plotted_for_the_incident() -> None:
    history = SeriesHistory(max_points=5, max_series=2)
    for start in (0, 3):  # the second frame repeats two points: they are recorded once
        frame = Frame(
            source="file",
            collected_at=10.0,
            series=(
                Series("latency", tuple(float(t) for t in range(start, start + 5)), (1.0,) * 5, {"host": "a"}),
                Series("errors", (1.0,), (2.0,)),
                Series("third", (1.0,), (3.0,)),  # over max_series: not kept
            ),
        )
        history.record("api", frame)
    window = {s.name: s for s in history.window("api", 0, 100)}
    assert set(window) == {"latency", "errors"}
    assert window["latency"].timestamps == (3.0, 4.0, 5.0, 6.0, 7.0)
    assert history.window("api", 100, 200) == [] and history.window("other", 0, 100) == []
    history.forget_except({"other"})
    assert history.window("api", 0, 100) == []
    recorded = [s.to_dict() for s in window.values()]
    incident = {"opened_at": 5.0, "labels": {"series": "latency", "host": "a"}, "transitions": []}
    (plot,) = incident_plots(incident, recorded)
    assert plot.caption.startswith("latency as collected") and "errors" not in plot.svg


def test_any_query_or_form_gets_a_page_never_a_crash(console: str, backend: FakeBackend) -> None:
    session = requests.Session()
    _login(session, console, TOKEN)
    csrf = _csrf(session.get(f"{console}/ui/actions", timeout=5).text)
    text = st.text(st.characters(codec="utf-8"), max_size=60)

    @settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(state=text, check=text, duration=text, comment=text, target=text)
    def probe(state: str, check: str, duration: str, comment: str, target: str) -> None:
        page = session.get(f"{console}/ui/incidents", params={"state": state, "check": check}, timeout=5)
        assert page.status_code in (200, 400), page.text[:300]
        form = {"csrf": csrf, "duration": duration, "comment": comment, "next": target}
        backend.incidents[1]["state"] = "firing"
        done = session.post(f"{console}/ui/incidents/1/silence", data=form, timeout=5)
        assert done.status_code in (200, 400), done.text[:300]
        assert done.url.startswith(f"{console}/ui/"), done.url  # `next` never leaves the console

    probe()
