"""The console's routes, mounted under ``/console`` with its security headers."""

from __future__ import annotations

from pathlib import Path

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.accounts import Role
from gateway.console import admin, audit_pages, auth, pages
from gateway.console.content import Rescanner
from gateway.console.context import BASE, Console
from gateway.console.security import SecurityHeaders
from gateway.pipeline import Scans
from gateway.relay import NextHop
from gateway.settings import Settings
from gateway.store import Store

STATIC = Path(__file__).parent / "static"


def console_routes(settings: Settings, store: Store, hop: NextHop, scanner: Scans | None) -> list[BaseRoute]:
    """Every console route; ``scanner`` is the gateway's scanner pool when it runs one."""
    console = Console.build(settings, store, hop, Rescanner(settings, scanner))
    r, a, v = Role.REVIEWER, Role.AUDITOR, Role.ADMIN

    def page(path: str, role: Role, handler: auth.Handler, methods: tuple[str, ...] = ("GET",)) -> Route:
        return Route(path, auth.guard(console, role, handler), methods=list(methods))

    post = ("POST",)
    routes: list[BaseRoute] = [
        Route("/login", auth.login_page(console), methods=["GET", "POST"]),
        page("/logout", a, auth.logout, post),
        page("/", a, pages.dashboard),
        page("/queue", a, pages.queue),
        page("/queue/bulk", r, pages.bulk_confirm, post),
        page("/queue/bulk/apply", r, pages.bulk_apply, post),
        page("/messages/{ident}", a, pages.message_page),
        page("/messages/{ident}/reveal", r, pages.reveal, post),
        page("/messages/{ident}/download", r, pages.download, post),
        page("/messages/{ident}/release", r, pages.release_action, post),
        page("/messages/{ident}/reject", r, pages.reject_action, post),
        page("/messages/{ident}/approve", r, pages.approve_action, post),
        page("/messages/{ident}/note", r, pages.note_action, post),
        page("/messages/{ident}/assign", r, pages.assign_action, post),
        page("/audit", a, audit_pages.audit_page),
        page("/audit/export", a, audit_pages.audit_export),
        page("/users", v, admin.users_page),
        page("/users", v, admin.add_user, post),
        page("/users/{name}", v, admin.change_user, post),
        page("/settings", v, admin.settings_page),
        Mount("/static", app=StaticFiles(directory=STATIC), name="console-static"),
    ]
    return [
        Mount(BASE, routes=routes, middleware=[Middleware(SecurityHeaders)]),
        Route("/", _to_console),
    ]


async def _to_console(request: Request) -> Response:
    return RedirectResponse(f"{BASE}/", status_code=307)
