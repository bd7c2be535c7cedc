"""The web console: a Starlette app rendering Jinja2 templates, with htmx (vendored) for the
searchable target lists. Sign-in required; signed, expiring sessions; a CSRF token on every
form; viewers look, finance users change. Every page calls ``console.services``, which calls
the functions the CLI calls."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from connectors.base import Directory
from console import services
from console.consents import Consents
from console.fmt import Formats
from core import approvals, mapping_tools, users
from core.config import LoadedConfig
from core.connect import Granted
from core.consoleconfig import ConsoleConfig
from core.periods import Period
from core.report import InvoiceAction
from scheduler.status import build_status

HERE = Path(__file__).resolve().parent
Clock = Callable[[], datetime]
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

ACTION_LABELS = {
    InvoiceAction.CREATE.value: "new",
    InvoiceAction.UPDATE.value: "changed",
    InvoiceAction.UNCHANGED.value: "unchanged",
    InvoiceAction.DELETE.value: "to delete (no billable entries left)",
    InvoiceAction.LOCKED.value: "locked in the target (a new invoice follows)",
    InvoiceAction.FAILED.value: "failed",
}
SECTION_LABELS = {
    mapping_tools.CLIENTS: "Client → contact",
    mapping_tools.TASKS: "Task → item",
    mapping_tools.EXPENSES: "Expense category → item",
}
ROUNDING_MODES = ("up", "nearest", "down", "none", "inherit")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class ConsoleState:
    loaded: LoadedConfig
    engine: Engine
    clock: Clock
    formats: Formats
    settings: ConsoleConfig
    # the target's contacts and items as the last preview read them, per profile: the
    # searchable lists (refreshed by every preview, so never older than the page shown)
    directories: dict[str, Directory] = field(default_factory=dict)
    # OAuth consents under way (their state, verifier, granted tokens): memory only
    consents: Consents = field(default_factory=Consents)


def _env() -> Environment:
    return Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


class NotSignedInError(Exception):
    def __init__(self, path: str) -> None:
        self.path = path


def _state(request: Request) -> ConsoleState:
    state: ConsoleState = request.app.state.console
    return state


def _csrf(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def _user(request: Request) -> users.User:
    """The signed-in user (re-read each request: a removed user or a changed role counts at
    once), or NotSignedInError."""
    name = request.session.get("user")
    user = users.get(_state(request).engine, name) if isinstance(name, str) else None
    if user is None:
        request.session.pop("user", None)
        raise NotSignedInError(
            request.url.path + (f"?{request.url.query}" if request.url.query else "")
        )
    return user


def _check_csrf(request: Request, given: object) -> None:
    """403 unless ``given`` is this session's CSRF token."""
    expected = request.session.get("csrf")
    if (
        not isinstance(given, str)
        or not isinstance(expected, str)
        or not secrets.compare_digest(given, expected)
    ):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")


async def _form(request: Request, *, edit: bool) -> tuple[users.User, FormData]:
    """A POST's form after the checks every form gets: signed in, the CSRF token matches
    (else 403), and, for a change, the finance role (else 403)."""
    user = _user(request)
    form = await request.form()
    _check_csrf(request, form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER))
    if edit and not user.can_edit:
        raise HTTPException(403, f"{user.name} is a viewer: changes need the finance role")
    return user, form


def _flash(request: Request, message: str, kind: str = "ok") -> None:
    request.session.setdefault("flash", []).append([kind, message])


def _render(
    request: Request, template: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    state = _state(request)
    env: Environment = request.app.state.templates
    name = request.session.get("user")
    user = users.get(state.engine, name) if isinstance(name, str) else None
    flashes = request.session.pop("flash", [])
    html = env.get_template(template).render(
        request=request,
        user=user,
        csrf=_csrf(request),
        fmt=state.formats,
        flashes=flashes,
        profiles=sorted(state.loaded.config.profiles),
        **context,
    )
    return HTMLResponse(html, status_code=status_code)


def _back(path: str, **params: str) -> RedirectResponse:
    query = urlencode({k: v for k, v in params.items() if v})
    return RedirectResponse(path + (f"?{query}" if query else ""), status_code=303)


def _choice(request: Request) -> tuple[str, Period]:
    state = _state(request)
    name = services.profile_name(state.loaded, request.query_params.get("profile"))
    period = services.parse_period(
        state.loaded, name, request.query_params.get("period"), state.clock()
    )
    return name, period


def _text(form: FormData, key: str) -> str:
    value = form.get(key)
    return value.strip() if isinstance(value, str) else ""


def _date(form: FormData, key: str) -> date | None:
    text = _text(form, key)
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise services.ConsoleError(f"{key}: {text!r} is not a date (YYYY-MM-DD)") from None


# -- sign-in -------------------------------------------------------------------------------


async def login_page(request: Request) -> Response:
    return _render(request, "login.html", next=request.query_params.get("next", "/"))


async def login(request: Request) -> Response:
    form = await request.form()
    _check_csrf(request, form.get(CSRF_FIELD))
    name, password = _text(form, "username"), form.get("password")
    target = _text(form, "next") or "/"
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    user = await run_in_threadpool(
        users.authenticate,
        _state(request).engine,
        name,
        password if isinstance(password, str) else "",
    )
    if user is None:
        _flash(request, "Wrong name or password.", "error")
        return _render(request, "login.html", status_code=401, next=target, username=name)
    request.session.clear()  # a new session on sign-in: nothing carries over
    request.session["user"] = user.name
    request.session["csrf"] = secrets.token_urlsafe(32)
    return RedirectResponse(target, status_code=303)


async def logout(request: Request) -> Response:
    await _form(request, edit=False)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


# -- pages ---------------------------------------------------------------------------------


async def overview(request: Request) -> Response:
    _user(request)
    state = _state(request)
    expiry = await run_in_threadpool(services.token_expiry, state.loaded, state.engine)
    statuses = await run_in_threadpool(
        build_status, state.loaded, state.engine, state.clock(), expiry
    )
    conns = await run_in_threadpool(services.connections, state.loaded, state.engine)
    attention = [c for c in conns if c.stored is None or c.stored.status != "ok" or not c.used_by]
    return _render(request, "overview.html", statuses=statuses, attention=attention)


async def mappings_page(request: Request) -> Response:
    _user(request)
    state = _state(request)
    name, period = _choice(request)
    found = await run_in_threadpool(
        services.preview, state.loaded, state.engine, name, period, suggest=True
    )
    if found.directory is not None:
        state.directories[name] = found.directory
    rows = [
        (
            s,
            services.candidates(found.directory, s.wanted.section)
            if found.directory is not None
            else [],
        )
        for s in found.suggestions
    ]
    return _render(
        request,
        "mappings.html",
        profile=name,
        period=str(period),
        found=found,
        rows=rows,
        sections=SECTION_LABELS,
        rate_rules=found.rules.rate_rules(),
        modes=ROUNDING_MODES,
        levels=services.LEVELS,
    )


async def _directory(request: Request, name: str, period: Period) -> Directory:
    state = _state(request)
    directory = state.directories.get(name)
    if directory is None:
        found = await run_in_threadpool(services.preview, state.loaded, state.engine, name, period)
        if found.directory is None:
            raise services.ConsoleError("the target's contacts and items could not be read")
        directory = state.directories[name] = found.directory
    return directory


async def candidates_fragment(request: Request) -> Response:
    """htmx: the options of one target list, filtered by what was typed."""
    _user(request)
    name, period = _choice(request)
    section = request.query_params.get("section", mapping_tools.CLIENTS)
    directory = await _directory(request, name, period)
    found = services.search(directory, section, request.query_params.get("q", ""))
    env: Environment = request.app.state.templates
    html = env.get_template("_options.html").render(options=found)
    return HTMLResponse(html)


async def map_entity(request: Request) -> Response:
    user, form = await _form(request, edit=True)
    state = _state(request)
    name = services.profile_name(state.loaded, _text(form, "profile"))
    period = services.parse_period(state.loaded, name, _text(form, "period"), state.clock())
    section, key, target = _text(form, "section"), _text(form, "key"), _text(form, "target")
    if section not in SECTION_LABELS or not key:
        raise services.ConsoleError("section and key: not something that can be mapped")
    directory = await _directory(request, name, period)
    chosen = next((c for c in services.candidates(directory, section) if c.id == target), None)
    if chosen is None:
        raise services.ConsoleError(f"{target!r} is not in the target's list: choose one")
    wanted = mapping_tools.Wanted(section, key, _text(form, "name") or key, "")
    message = await run_in_threadpool(
        services.map_entity,
        state.loaded,
        state.engine,
        name,
        wanted,
        chosen,
        author=user.name,
        now=state.clock(),
    )
    _flash(request, message)
    return _back("/mappings", profile=name, period=str(period))


async def add_rate(request: Request) -> Response:
    user, form = await _form(request, edit=True)
    state = _state(request)
    name = services.profile_name(state.loaded, _text(form, "profile"))
    period = _text(form, "period")
    message = await run_in_threadpool(
        lambda: services.set_rate(
            state.loaded,
            state.engine,
            name,
            level=_text(form, "level"),
            entity=_text(form, "entity"),
            rate=_text(form, "rate"),
            starts=_date(form, "from"),
            ends=_date(form, "until"),
            author=user.name,
            now=state.clock(),
        )
    )
    _flash(request, message)
    return _back("/mappings", profile=name, period=period)


async def set_rounding(request: Request) -> Response:
    user, form = await _form(request, edit=True)
    state = _state(request)
    name = services.profile_name(state.loaded, _text(form, "profile"))
    message = await run_in_threadpool(
        lambda: services.set_rounding(
            state.loaded,
            state.engine,
            name,
            level=_text(form, "level"),
            entity=_text(form, "entity"),
            increment_minutes=_text(form, "increment_minutes") or "1",
            mode=_text(form, "mode"),
            author=user.name,
            now=state.clock(),
        )
    )
    _flash(request, message)
    return _back("/mappings", profile=name, period=_text(form, "period"))


async def preview_page(request: Request) -> Response:
    _user(request)
    state = _state(request)
    name, period = _choice(request)
    found = await run_in_threadpool(services.preview, state.loaded, state.engine, name, period)
    if found.directory is not None:
        state.directories[name] = found.directory
    return _render(
        request,
        "preview.html",
        profile=name,
        period=str(period),
        found=found,
        labels=ACTION_LABELS,
        require_approval=state.loaded.config.profiles[name].require_approval,
    )


async def approve(request: Request) -> Response:
    user, form = await _form(request, edit=True)
    state = _state(request)
    name = services.profile_name(state.loaded, _text(form, "profile"))
    period = services.parse_period(state.loaded, name, _text(form, "period"), state.clock())
    report = await run_in_threadpool(
        lambda: services.approve(
            state.loaded,
            state.engine,
            name,
            period,
            _text(form, "fingerprint"),
            user=user.name,
            clock=state.clock,
        )
    )
    _flash(
        request,
        f"approved and pushed: run {report.run_id} {report.status}; invoices "
        f"{report.invoices_created} created, {report.invoices_updated} updated, "
        f"{report.invoices_failed} failed",
        "ok" if not report.errors and not report.invoices_failed else "error",
    )
    return RedirectResponse(f"/runs/{report.run_id}", status_code=303)


async def runs_page(request: Request) -> Response:
    _user(request)
    state = _state(request)
    profile = request.query_params.get("profile") or None
    status = request.query_params.get("status") or None
    if status is not None and status not in services.RUN_STATUSES:
        raise services.ConsoleError(f"status: choose one of {', '.join(services.RUN_STATUSES)}")
    rows = await run_in_threadpool(services.run_list, state.engine, profile=profile, status=status)
    return _render(
        request,
        "runs.html",
        rows=rows,
        statuses=services.RUN_STATUSES,
        chosen_profile=profile or "",
        chosen_status=status or "",
    )


async def run_page(request: Request) -> Response:
    _user(request)
    run_id = str(request.path_params["run_id"])
    detail = await run_in_threadpool(services.run_detail, _state(request).engine, run_id)
    if detail is None:
        raise HTTPException(404, f"no run {run_id}")
    return _render(request, "run.html", detail=detail, labels=ACTION_LABELS)


async def retry_run(request: Request) -> Response:
    user, _form_data = await _form(request, edit=True)
    state = _state(request)
    run_id = str(request.path_params["run_id"])
    report = await run_in_threadpool(services.retry, state.loaded, state.engine, run_id)
    await run_in_threadpool(
        approvals.audit, state.engine, user.name, "retry", run_id, state.clock()
    )
    _flash(request, f"retried as run {report.run_id}: {report.status}")
    return RedirectResponse(f"/runs/{report.run_id}", status_code=303)


def _callback_url(request: Request) -> str:
    """Where the provider sends the browser back (console.public_url, or the address the
    browser used); the app must have it registered as a redirect URI."""
    try:
        return _state(request).settings.callback_url(f"{request.url.scheme}://{request.url.netloc}")
    except ValueError as exc:
        raise services.ConsoleError(str(exc)) from None


async def connections_page(request: Request) -> Response:
    _user(request)
    state = _state(request)
    found = await run_in_threadpool(services.connections, state.loaded, state.engine)
    try:
        callback, no_callback = _callback_url(request), ""
    except services.ConsoleError as exc:
        callback, no_callback = "", str(exc)
    return _render(
        request,
        "connections.html",
        connections=found,
        config=state.loaded.path,
        configured=sorted(state.loaded.config.connections.items()),
        callback=callback,
        no_callback=no_callback,
    )


# -- connecting from the browser --------------------------------------------------------
# POST /connections/connect keeps the consent (state, PKCE verifier) in memory, its state in
# the signed session, and sends the browser to the provider; the provider sends it back to
# /connections/callback. That navigation comes from another site, so the browser holds the
# SameSite=Strict session cookie back: the answer is then kept with its consent (found by its
# state) and a page of ours continues to /connections/callback/resume, which the cookie
# reaches. Either way the answer is checked against the session's consent, exchanged, and
# stored (or, with several organisations, kept until the user picks one).

NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
RESUME = "/connections/callback/resume"
BOUNCE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<meta http-equiv="refresh" content="0;url={RESUME}">
<title>Connecting · hourbridge console</title>
</head>
<body>
<main><p>Back from the provider: <a href="{RESUME}">continue to the console</a>.</p></main>
</body>
</html>
"""


def _editor(request: Request) -> users.User:
    user = _user(request)
    if not user.can_edit:
        raise HTTPException(403, f"{user.name} is a viewer: connecting needs the finance role")
    return user


async def connect_start(request: Request) -> Response:
    user, form = await _form(request, edit=True)
    state = _state(request)
    callback = _callback_url(request)
    consent = await run_in_threadpool(
        services.connect_begin, state.loaded, state.engine, _text(form, "name"), callback
    )
    state.consents.wait(user.name, consent, state.clock())
    request.session["consent"] = consent.state
    return RedirectResponse(consent.url, status_code=303, headers=NO_STORE)


async def connect_callback(request: Request) -> Response:
    if not isinstance(request.session.get("user"), str):
        # no session cookie came (SameSite=Strict, from the provider's site): keep the
        # answer with its consent and continue from a page of ours. The session is not
        # touched here: a new cookie would replace the signed-in one.
        state = request.query_params.get("state", "")
        _state(request).consents.answered(state, request.url.query)
        return HTMLResponse(BOUNCE, headers=NO_STORE)
    return await _connect_answer(request, request.url.query)


async def connect_resume(request: Request) -> Response:
    return await _connect_answer(request, None)


async def _connect_answer(request: Request, answer: str | None) -> Response:
    user = _editor(request)
    state = _state(request)
    key = request.session.pop("consent", None)
    waiting = state.consents.take(key) if isinstance(key, str) else None
    if waiting is None or waiting.user != user.name:
        raise services.ConsoleError(
            "no consent was started in this session (or the console restarted since): not "
            "ours; nothing stored: connect again"
        )
    if state.consents.expired(waiting.started, state.clock()):
        minutes = int(state.consents.lifetime.total_seconds() // 60)
        raise services.ConsoleError(
            f"the consent took longer than {minutes} minutes and expired; nothing stored: "
            "connect again"
        )
    answer = answer if answer is not None else waiting.answer
    if answer is None:
        raise services.ConsoleError(
            "no answer from the provider reached the console; nothing stored: connect again"
        )
    response = f"{waiting.consent.redirect_uri}?{answer}"
    granted = await run_in_threadpool(
        services.connect_finish, state.loaded, waiting.consent, response
    )
    if len(granted.tenants) == 1:
        return await _connected(request, user, granted, 0)
    request.session["picking"] = state.consents.pick(user.name, granted, state.clock())
    return RedirectResponse("/connections/choose", status_code=303, headers=NO_STORE)


async def _connected(request: Request, user: users.User, granted: Granted, index: int) -> Response:
    state = _state(request)
    tenant = granted.tenants[index]
    message = await run_in_threadpool(
        services.connect_save, state.loaded, state.engine, granted, tenant
    )
    await run_in_threadpool(
        approvals.audit,
        state.engine,
        user.name,
        "connection.connect",
        f"{granted.name}: {granted.provider} {tenant.name} ({tenant.id})",
        state.clock(),
    )
    _flash(request, message)
    return RedirectResponse("/connections", status_code=303, headers=NO_STORE)


def _picking(request: Request, user: users.User) -> tuple[str, Granted]:
    state = _state(request)
    key = request.session.get("picking")
    found = state.consents.picking(key) if isinstance(key, str) else None
    if (
        found is None
        or found.user != user.name
        or state.consents.expired(found.started, state.clock())
    ):
        request.session.pop("picking", None)
        raise services.ConsoleError(
            "no organisations wait for a choice in this session (a choice keeps for "
            f"{int(state.consents.lifetime.total_seconds() // 60)} minutes); nothing stored: "
            "connect again"
        )
    return str(key), found.granted


async def choose_page(request: Request) -> Response:
    user = _editor(request)
    _key, granted = _picking(request, user)
    return _render(request, "connect_choose.html", granted=granted)


async def choose_tenant(request: Request) -> Response:
    user, form = await _form(request, edit=True)
    key, granted = _picking(request, user)
    wanted = _text(form, "tenant")
    index = next((i for i, t in enumerate(granted.tenants) if t.id == wanted), None)
    if index is None:
        raise services.ConsoleError("choose one of the organisations listed")
    answer = await _connected(request, user, granted, index)
    _state(request).consents.picked(key)
    request.session.pop("picking", None)
    return answer


async def test_connection(request: Request) -> Response:
    await _form(request, edit=False)  # a test changes nothing: viewers may run it
    state = _state(request)
    name = str(request.path_params["name"])
    message = await run_in_threadpool(services.test_connection, state.loaded, state.engine, name)
    _flash(request, message)
    return RedirectResponse("/connections", status_code=303)


async def remove_connection(request: Request) -> Response:
    user, _form_data = await _form(request, edit=True)
    state = _state(request)
    name = str(request.path_params["name"])
    message = await run_in_threadpool(services.remove_connection, state.loaded, state.engine, name)
    await run_in_threadpool(
        approvals.audit, state.engine, user.name, "connection.remove", name, state.clock()
    )
    _flash(request, message)
    return RedirectResponse("/connections", status_code=303)


# -- errors ------------------------------------------------------------------------------


async def _not_signed_in(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotSignedInError)
    if request.method != "GET" or request.headers.get("hx-request"):
        return Response("sign in first", status_code=401, headers={"HX-Redirect": "/login"})
    return RedirectResponse(f"/login?next={quote(exc.path, safe='/')}", status_code=303)


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _render(request, "error.html", status_code=exc.status_code, message=exc.detail)


async def _console_error(request: Request, exc: Exception) -> Response:
    """A request that can't be done: back where it came from with the reason, or the error
    page for a GET."""
    message = str(exc)
    if request.method == "POST":
        _flash(request, message, "error")
        back = request.headers.get("referer", "/")
        host = f"{request.url.scheme}://{request.url.netloc}"
        return RedirectResponse(back if back.startswith(host) else "/", status_code=303)
    back = "/connections" if request.url.path.startswith("/connections") else "/"
    return _render(request, "error.html", status_code=400, message=message, back=back)


Handler = Callable[[Request, Exception], Awaitable[Response]]


def create_app(
    loaded: LoadedConfig,
    engine: Engine,
    settings: ConsoleConfig,
    *,
    clock: Clock = _utcnow,
) -> Starlette:
    org = loaded.config.organisation
    routes = [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", overview),
        Route("/mappings", mappings_page),
        Route("/mappings/candidates", candidates_fragment),
        Route("/mappings/map", map_entity, methods=["POST"]),
        Route("/mappings/rates", add_rate, methods=["POST"]),
        Route("/mappings/rounding", set_rounding, methods=["POST"]),
        Route("/preview", preview_page),
        Route("/preview/approve", approve, methods=["POST"]),
        Route("/runs", runs_page),
        Route("/runs/{run_id}", run_page),
        Route("/runs/{run_id}/retry", retry_run, methods=["POST"]),
        Route("/connections", connections_page),
        Route("/connections/connect", connect_start, methods=["POST"]),
        Route("/connections/callback", connect_callback),
        Route("/connections/callback/resume", connect_resume),
        Route("/connections/choose", choose_page, methods=["GET"]),
        Route("/connections/choose", choose_tenant, methods=["POST"]),
        Route("/connections/{name}/test", test_connection, methods=["POST"]),
        Route("/connections/{name}/remove", remove_connection, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    handlers: dict[Any, Handler] = {
        NotSignedInError: _not_signed_in,
        HTTPException: _refused,
        services.ConsoleError: _console_error,
    }
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(
                SessionMiddleware,
                secret_key=settings.session_secret.get_secret_value(),
                session_cookie="hourbridge_console",
                max_age=settings.session_minutes * 60,
                same_site="strict",
                https_only=settings.behind_tls,
            )
        ],
        exception_handlers=handlers,
    )
    app.state.console = ConsoleState(loaded, engine, clock, Formats(org.locale, org.tz), settings)
    app.state.templates = _env()
    return app
