"""What every console handler shares: settings, store, accounts, templates, time zone.

Built once per web app by ``console_routes``; handlers receive it explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from gateway.accounts import Accounts, LockoutPolicy, Role, User
from gateway.console.content import Rescanner
from gateway.console.sessions import Session, Timeouts
from gateway.relay import NextHop
from gateway.settings import Settings
from gateway.store import Store

BASE = "/console"
TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Viewer:
    """The signed-in user of this request and their session."""

    user: User
    session: Session

    def can(self, role: Role) -> bool:
        return self.user.role >= role


@dataclass
class Console:
    settings: Settings
    store: Store
    hop: NextHop
    accounts: Accounts
    rescanner: Rescanner
    templates: jinja2.Environment
    zone: ZoneInfo

    @classmethod
    def build(cls, settings: Settings, store: Store, hop: NextHop, rescanner: Rescanner) -> Console:
        c = settings.console
        lockout = LockoutPolicy(c.lockout_threshold, c.lockout_base_s, c.lockout_max_s)
        zone = ZoneInfo(c.timezone)
        return cls(settings, store, hop, Accounts(store, lockout), rescanner, _environment(zone), zone)

    @property
    def timeouts(self) -> Timeouts:
        c = self.settings.console
        return Timeouts(timedelta(seconds=c.session_idle_s), timedelta(seconds=c.session_absolute_s))

    @property
    def cookie_name(self) -> str:
        # The __Host- prefix makes browsers insist on Secure, path=/ and no Domain.
        return "__Host-dlp_session" if self.settings.console.cookie_secure else "dlp_session"

    def render(
        self, request: Request, template: str, viewer: Viewer | None, status: int = 200, **values: Any
    ) -> HTMLResponse:
        """A page from a template; every value is escaped by the template engine."""
        page = self.templates.get_template(template).render(
            base=BASE, viewer=viewer, Role=Role, request_path=request.url.path, **values
        )
        return HTMLResponse(page, status_code=status)


def _environment(zone: ZoneInfo) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = lambda value: _when(value, zone)
    env.filters["age"] = _age
    env.filters["size"] = _size
    return env


def _when(value: datetime | None, zone: ZoneInfo) -> str:
    if value is None:
        return ""
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def _age(value: datetime) -> str:
    seconds = max(0, int((datetime.now(UTC) - value).total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


def _size(value: int) -> str:
    if value < 1024:
        return f"{value} B"
    if value < 1024 * 1024:
        return f"{value / 1024:.1f} KiB"
    return f"{value / 1024 / 1024:.1f} MiB"
