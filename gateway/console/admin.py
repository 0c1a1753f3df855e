"""Administrators' pages: accounts (add, role, disable, unlock) and the running settings."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

import yaml
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.accounts import AccountError, Role
from gateway.console.context import BASE, Console, Viewer


async def users_page(console: Console, request: Request, viewer: Viewer) -> Response:
    return await _users(console, request, viewer)


async def add_user(console: Console, request: Request, viewer: Viewer) -> Response:
    form = await request.form()
    try:
        role = Role.parse(str(form.get("role", "")))
        await asyncio.to_thread(
            console.accounts.add,
            str(form.get("username", "")),
            role,
            str(form.get("password", "")),
            str(form.get("email", "")),
            viewer.user.username,
        )
    except AccountError as exc:
        return await _users(console, request, viewer, error=str(exc), status=400)
    return RedirectResponse(f"{BASE}/users", status_code=303)


async def change_user(console: Console, request: Request, viewer: Viewer) -> Response:
    """Change a role, disable, enable or unlock an account."""
    form = await request.form()
    name = request.path_params["name"]
    change = str(form.get("change", ""))
    actor = viewer.user.username
    try:
        if name == actor and change in ("disable", "role"):
            raise AccountError("you cannot disable your own account or change your own role")
        if change == "role":
            await asyncio.to_thread(
                console.accounts.set_role, name, Role.parse(str(form.get("role", ""))), actor
            )
        elif change in ("disable", "enable"):
            await asyncio.to_thread(console.accounts.set_disabled, name, change == "disable", actor)
        elif change == "unlock":
            await asyncio.to_thread(console.accounts.unlock, name, actor)
        else:
            raise AccountError("unknown change")
    except AccountError as exc:
        return await _users(console, request, viewer, error=str(exc), status=400)
    return RedirectResponse(f"{BASE}/users", status_code=303)


async def settings_page(console: Console, request: Request, viewer: Viewer) -> Response:
    text = yaml.safe_dump(_plain(dataclasses.asdict(console.settings)), sort_keys=False, allow_unicode=True)
    return console.render(request, "settings.html", viewer, text=text)


async def _users(
    console: Console, request: Request, viewer: Viewer, error: str = "", status: int = 200
) -> Response:
    users = await asyncio.to_thread(console.accounts.all)
    return console.render(
        request,
        "users.html",
        viewer,
        status,
        users=users,
        roles=[r.label for r in Role],
        now=datetime.now(UTC),
        error=error,
        csrf=viewer.session.csrf,
    )


def _plain(value: object) -> object:
    """Tuples as lists so the YAML dump reads like the settings file."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
