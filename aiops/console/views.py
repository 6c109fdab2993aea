"""The web console's routes under ``/ui/``: server-rendered pages over the same daemon facade as the JSON API.

Every page calls the backend (:class:`aiops.http.backend.ApiBackend`, the daemon) on a worker thread, like
the API's handlers, and renders an autoescaped Jinja2 template; a mutation is a plain HTML form POST that
answers with a redirect (303) back to the page, so the console works without JavaScript and the browser's
back button never re-submits anything. Who may do what is decided in :mod:`aiops.console.auth`; every page
is answered with a strict Content-Security-Policy (no inline script, nothing fetched from elsewhere).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Mapping
from importlib.resources import files
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, urlsplit

import structlog
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

import aiops
from aiops.console.auth import CSRF_COOKIE, SESSION_COOKIE, SESSION_SECONDS, ConsoleAuth, Role
from aiops.console.pages import (
    ACTOR,
    ConsoleContext,
    Refused,
    ack,
    actions_page,
    backtest_page,
    backtests_page,
    checks_page,
    effectiveness_page,
    incident_page,
    incidents_page,
    missed,
    silence,
    verdict,
)
from aiops.errors import AiopsError, StoreError
from aiops.http.problems import new_error_id, public_message, refusal_status

if TYPE_CHECKING:
    import jinja2

MAX_FORM: Final = 16 * 1024  # the console's forms carry a token, a comment and a duration
LOGIN_FAILURE_DELAY: Final = 0.5  # seconds: slows guessing down without tying up a worker thread
MESSAGES: Final = {
    "ack": "Incident acknowledged.",
    "silence": "Incident silenced.",
    "verdict": "Verdict recorded.",
    "missed": "Missed problem recorded.",
    "approve": "Action approved; the executor runs it within a second.",
    "deny": "Action denied.",
    "pause": "Kill switch on: no remediation will run.",
    "resume": "Kill switch off: remediations run again.",
    "login": "Logged in.",
    "logout": "Logged out.",
}
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

log = structlog.get_logger("aiops.console")


@functools.cache
def _templates() -> jinja2.Environment:
    """The pages' templates, loaded at the first page served: jinja2 is not needed to get ready (a daemon
    nobody browses never imports it)."""
    import jinja2

    templates = jinja2.Environment(
        loader=jinja2.PackageLoader("aiops.console", "templates"),
        autoescape=True,
        undefined=jinja2.ChainableUndefined,  # a field a backend leaves out shows empty, never a 500
        trim_blocks=True,
        lstrip_blocks=True,
    )
    templates.filters["when"] = _when
    templates.filters["iso"] = _iso
    return templates


def _when(value: Any) -> str:
    """Epoch seconds as UTC text (the page's script shows it in the browser's time zone)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value))


def _iso(value: Any) -> str:
    """Epoch seconds as an ISO 8601 instant, for ``<time datetime>``."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(value))


def console_routes(ctx: ConsoleContext) -> list[BaseRoute]:
    """Everything under ``/ui``: pages, form posts, and the package's static files."""
    static = StaticFiles(directory=str(files("aiops.console") / "static"))
    page, post = _page_route(ctx), _post_route(ctx)
    routes = [
        Route("/", lambda request: RedirectResponse("/ui/incidents", 303), methods=["GET"]),
        page("/incidents", incidents_page),
        page("/incidents/{id:aiops_id}", incident_page),
        page("/actions", actions_page),
        page("/checks", checks_page),
        page("/effectiveness", effectiveness_page),
        page("/backtests", backtests_page),
        page("/backtests/{name:str}", backtest_page),
        Route("/login", _login_form(ctx), methods=["GET"]),
        Route("/login", _login(ctx), methods=["POST"]),
        Route("/logout", _logout(ctx), methods=["POST"]),
        post("/incidents/{id:aiops_id}/ack", "ack", ack),
        post("/incidents/{id:aiops_id}/silence", "silence", silence),
        post("/incidents/{id:aiops_id}/verdict", "verdict", verdict),
        post("/missed", "missed", missed),
        post("/actions/{id:aiops_id}/approve", "approve", lambda c, i, f: c.backend.approve(i, ACTOR, True)),
        post("/actions/{id:aiops_id}/deny", "deny", lambda c, i, f: c.backend.approve(i, ACTOR, False)),
        post("/pause", "pause", lambda c, i, f: c.backend.set_paused(True, ACTOR)),
        post("/resume", "resume", lambda c, i, f: c.backend.set_paused(False, ACTOR)),
        Mount("/static", static, name="static"),
        Route("/{path:path}", _not_found(ctx), methods=["GET"]),  # a page, not the API's problem+json
    ]
    return [
        Route("/ui", lambda request: RedirectResponse("/ui/incidents", 303), methods=["GET"]),
        Mount("/ui", routes=routes),
    ]


# -- plumbing -----------------------------------------------------------------------------------------------

Loader = Callable[[ConsoleContext, Request], dict[str, Any]]
Mutation = Callable[[ConsoleContext, int, Mapping[str, str]], object]


def _page_route(ctx: ConsoleContext) -> Callable[[str, Loader], Route]:
    def make(path: str, loader: Loader) -> Route:
        template = _templates().get_template(f"{loader.__name__.strip('_').removesuffix('_page')}.html")

        async def endpoint(request: Request) -> Response:
            role = ctx.auth.read_role(_session(ctx, request))
            if role < Role.READ:
                return RedirectResponse(f"/ui/login?next={quote(request.url.path)}", 303)
            try:
                data = await run_in_threadpool(loader, ctx, request)
            except Refused as exc:
                return _error_page(ctx, request, exc.status, exc.message)
            except AiopsError as exc:
                return _error_page(ctx, request, *_refusal(exc))
            return _render(ctx, request, template, data, role)

        return Route(path, endpoint, methods=["GET"])

    return make


def _post_route(ctx: ConsoleContext) -> Callable[[str, str, Mutation], Route]:
    def make(path: str, done: str, mutation: Mutation) -> Route:
        async def endpoint(request: Request) -> Response:
            form = await _checked_form(ctx, request)
            if isinstance(form, Response):
                return form
            if ctx.auth.write_token is None:
                return _error_page(
                    ctx, request, 403,
                    "Changes are disabled because no write token is configured: set server.token (or "
                    "server.token_file, or AIOPS_API_TOKEN) and log in with it.",
                )  # fmt: skip
            if _session(ctx, request) < Role.WRITE:
                return _error_page(ctx, request, 403, "Log in with the write token (server.token) to change things.")
            path_id = int(request.path_params.get("id", 0))
            try:
                await run_in_threadpool(mutation, ctx, path_id, form)
            except Refused as exc:
                return _error_page(ctx, request, exc.status, exc.message)
            except AiopsError as exc:
                return _error_page(ctx, request, *_refusal(exc))
            log.info("console.change", change=done, id=path_id or None)
            return RedirectResponse(_with_message(_next(form.get("next")), done), 303)

        return Route(path, endpoint, methods=["POST"])

    return make


async def _checked_form(ctx: ConsoleContext, request: Request) -> dict[str, str] | Response:
    """The form of a POST, once it is known to come from a console page of this browser (else a 403)."""
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():
        return _error_page(ctx, request, 411, "A form must declare its length (Content-Length).")
    if int(declared) > MAX_FORM:
        return _error_page(ctx, request, 413, f"Form too large (limit {MAX_FORM} bytes).")
    origin = request.headers.get("origin")
    if origin is not None and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        return _error_page(ctx, request, 403, "Form sent from another site; refused.")
    async with request.form(max_files=0, max_fields=20, max_part_size=MAX_FORM) as raw:
        form = {k: v for k, v in raw.items() if isinstance(v, str)}
    if not ctx.auth.csrf_ok(request.cookies.get(CSRF_COOKIE), form.get("csrf")):
        return _error_page(
            ctx, request, 403, "This form has expired or did not come from this console; reload the page and retry."
        )
    return form


def _session(ctx: ConsoleContext, request: Request) -> Role:
    return ctx.auth.session_role(request.cookies.get(SESSION_COOKIE))


def _secure(ctx: ConsoleContext, request: Request) -> bool:
    """Secure cookies over https, and always on a non-loopback listener (which must sit behind TLS); on
    plain http on the loopback a Secure cookie would be dropped by the browser, so the flag is left out."""
    return request.url.scheme == "https" or not ctx.auth.loopback


def _csrf_cookie(request: Request) -> tuple[str, bool]:
    """This browser's CSRF cookie, and whether it is new (to be set on the answer)."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if len(cookie) == 32 and all(c in "0123456789abcdef" for c in cookie):
        return cookie, False
    return ConsoleAuth.new_csrf_cookie(), True


def _respond(ctx: ConsoleContext, request: Request, body: str, status: int, csrf: tuple[str, bool]) -> Response:
    response = HTMLResponse(body, status, headers=SECURITY_HEADERS)
    if csrf[1]:
        response.set_cookie(
            CSRF_COOKIE, csrf[0], path="/ui", httponly=True, samesite="strict", secure=_secure(ctx, request)
        )
    return response


def _render(
    ctx: ConsoleContext, request: Request, template: jinja2.Template, data: Mapping[str, Any], role: Role,
    status: int = 200,
) -> Response:  # fmt: skip
    csrf = _csrf_cookie(request)
    message = MESSAGES.get(request.query_params.get("done", ""), "")
    body = template.render(
        **data,
        role=role.name.lower(),
        can_write=role >= Role.WRITE,
        logged_in=_session(ctx, request) > Role.NONE,
        open_reads=ctx.auth.open_reads,
        writes_enabled=ctx.auth.write_token is not None,
        csrf=ctx.auth.csrf_token(csrf[0]),
        here=request.url.path,
        message=message,
        version=aiops.__version__,
    )
    return _respond(ctx, request, body, status, csrf)


def _error_page(ctx: ConsoleContext, request: Request, status: int, message: str) -> Response:
    role = ctx.auth.read_role(_session(ctx, request))
    came_from = _next(urlsplit(request.headers.get("referer", "")).path)  # log in, then back to that page
    data = {"status": status, "error": message, "paused": None, "waiting_count": None, "came_from": came_from}
    return _render(ctx, request, _templates().get_template("error.html"), data, role, status)


def _refusal(exc: AiopsError) -> tuple[int, str]:
    """A backend refusal as (status, message): the API's mapping, and nothing secret shown."""
    if isinstance(exc, StoreError):
        error_id = new_error_id()
        log.error("console.store_error", error_id=error_id, error=str(exc))
        return 503, f"The store is unavailable; retry later (error id {error_id})."
    status = refusal_status(exc.reason)
    shown = public_message(str(exc))
    if shown is None:
        error_id = new_error_id()
        log.error("console.refusal_hidden", error_id=error_id, error=str(exc))
        shown = f"Refused; see the daemon's log (error id {error_id})."
    return status, shown


def _next(raw: str | None) -> str:
    """Where a form sends the browser back to: a console path only, never another site."""
    if raw and raw.startswith("/ui/") and "//" not in raw and "\\" not in raw and len(raw) < 300:
        return raw.split("?", 1)[0]
    return "/ui/incidents"


def _with_message(path: str, done: str) -> str:
    return f"{path}?done={done}"


# -- login ----------------------------------------------------------------------------------------------------


def _not_found(ctx: ConsoleContext) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return _error_page(ctx, request, 404, f"No page {request.url.path[:100]} in the console.")

    return endpoint


def _login_form(ctx: ConsoleContext) -> Callable[[Request], Awaitable[Response]]:
    template = _templates().get_template("login.html")

    async def endpoint(request: Request) -> Response:
        data = {"next": _next(request.query_params.get("next")), "paused": None, "waiting_count": None, "failed": False}
        return _render(ctx, request, template, data, ctx.auth.read_role(_session(ctx, request)))

    return endpoint


def _login(ctx: ConsoleContext) -> Callable[[Request], Awaitable[Response]]:
    template = _templates().get_template("login.html")

    async def endpoint(request: Request) -> Response:
        form = await _checked_form(ctx, request)
        if isinstance(form, Response):
            return form
        role = ctx.auth.role_for_token(form.get("token", ""))
        target = _next(form.get("next"))
        if role is Role.NONE:
            log.warning("console.login_failed", client=request.client.host if request.client else None)
            await asyncio.sleep(LOGIN_FAILURE_DELAY)
            data = {"next": target, "paused": None, "waiting_count": None, "failed": True}
            return _render(ctx, request, template, data, ctx.auth.read_role(Role.NONE), 401)
        response = RedirectResponse(_with_message(target, "login"), 303)
        response.set_cookie(
            SESSION_COOKIE,
            ctx.auth.new_session(role),
            max_age=SESSION_SECONDS,
            path="/ui",
            httponly=True,
            samesite="strict",
            secure=_secure(ctx, request),
        )
        log.info("console.login", role=role.name.lower())
        return response

    return endpoint


def _logout(ctx: ConsoleContext) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        form = await _checked_form(ctx, request)
        if isinstance(form, Response):
            return form
        response = RedirectResponse(_with_message("/ui/login", "logout"), 303)
        secure = _secure(ctx, request)
        response.delete_cookie(SESSION_COOKIE, path="/ui", httponly=True, samesite="strict", secure=secure)
        return response

    return endpoint
