"""Signing in and out, and the guard every other console page goes through.

The guard loads the session (idle and absolute timeouts), checks the role, and
on every POST checks the session's CSRF token before the handler runs.  The
login form, which has no session yet, uses a double-submit token: a random
value in a SameSite=Strict cookie that the form must repeat.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.accounts import Role
from gateway.console import sessions
from gateway.console.context import BASE, Console, Viewer

Handler = Callable[[Console, Request, Viewer], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]

LOGIN_COOKIE = "dlp_login_csrf"
LOGIN_MESSAGES = {
    "bad-credentials": "Wrong username or password.",
    "locked": (
        "Too many failed attempts: this account is locked for a while. "
        "Try again later or ask an administrator."
    ),
    "disabled": "This account is disabled.",
    "expired": "Your session ended. Please sign in again.",
}


def client_of(request: Request) -> str:
    return request.client.host if request.client else ""


async def current_viewer(console: Console, request: Request) -> Viewer | None:
    """The signed-in user for this request, or None."""
    token = request.cookies.get(console.cookie_name, "")
    if not token:
        return None
    session = await asyncio.to_thread(sessions.load, console.store, token, console.timeouts)
    if session is None:
        return None
    user = await asyncio.to_thread(console.accounts.get, session.username)
    if user is None or user.disabled:
        return None
    return Viewer(user, session)


def guard(console: Console, role: Role, handler: Handler) -> Endpoint:
    """Wrap a handler so it runs only for a signed-in user of at least ``role``,
    and, for POSTs, only with the session's CSRF token."""

    async def endpoint(request: Request) -> Response:
        viewer = await current_viewer(console, request)
        if viewer is None:
            if request.method == "GET":
                return RedirectResponse(f"{BASE}/login?m=expired", status_code=303)
            return console.render(
                request, "error.html", None, 401, title="Not signed in", text="Please sign in."
            )
        if request.method == "POST":
            form = await request.form()
            submitted = form.get("csrf")
            if not isinstance(submitted, str) or not viewer.session.csrf_ok(submitted):
                await asyncio.to_thread(
                    console.store.record,
                    viewer.user.username,
                    "csrf-refused",
                    None,
                    {"path": request.url.path, "client": client_of(request)},
                )
                return console.render(
                    request,
                    "error.html",
                    viewer,
                    403,
                    title="Refused",
                    text="The form was missing its security token.",
                )
        if not viewer.can(role):
            await asyncio.to_thread(
                console.store.record,
                viewer.user.username,
                "forbidden",
                None,
                {"path": request.url.path, "method": request.method, "role": viewer.user.role.label},
            )
            return console.render(
                request, "error.html", viewer, 403, title="Not allowed", text="Your role does not allow this."
            )
        return await handler(console, request, viewer)

    return endpoint


def login_page(console: Console) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        if request.method == "POST":
            return await _login(console, request)
        key = request.query_params.get("m", "")
        return _login_form(console, request, LOGIN_MESSAGES.get(key, ""), 200)

    return endpoint


def _login_form(console: Console, request: Request, message: str, status: int) -> Response:
    token = secrets.token_urlsafe(32)
    response = console.render(request, "login.html", None, status, csrf=token, message=message)
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=1800,
        path=f"{BASE}/login",
        secure=console.settings.console.cookie_secure,
        httponly=True,
        samesite="strict",
    )
    return response


async def _login(console: Console, request: Request) -> Response:
    form = await request.form()
    submitted = str(form.get("csrf", ""))
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(submitted.encode(), expected.encode()):
        return console.render(
            request,
            "error.html",
            None,
            403,
            title="Refused",
            text="The sign-in form expired; please reload it.",
        )
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    result = await asyncio.to_thread(console.accounts.authenticate, username, password, client_of(request))
    if result.user is None:
        return _login_form(
            console, request, LOGIN_MESSAGES[result.reason], 401 if result.reason != "locked" else 429
        )
    # A fresh session id at every sign-in (no session fixation).
    token = await asyncio.to_thread(sessions.create, console.store, result.user.username)
    response = RedirectResponse(f"{BASE}/", status_code=303)
    response.set_cookie(
        console.cookie_name,
        token,
        path="/",
        secure=console.settings.console.cookie_secure,
        httponly=True,
        samesite="strict",
    )
    response.delete_cookie(LOGIN_COOKIE, path=f"{BASE}/login")
    return response


async def logout(console: Console, request: Request, viewer: Viewer) -> Response:
    """End the session (POST with CSRF, through the guard)."""
    await asyncio.to_thread(sessions.end, console.store, viewer.session.token_hash)
    await asyncio.to_thread(console.store.record, viewer.user.username, "logout", None, {})
    response = RedirectResponse(f"{BASE}/login", status_code=303)
    response.delete_cookie(console.cookie_name, path="/")
    return response
