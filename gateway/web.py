"""The gateway's web service: health endpoints, the security console, sender confirm pages.

One Starlette app served by uvicorn inside the `dlp-gateway run` process.
Each feature contributes its routes from its own module; this module only
assembles them and holds what they share.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.confirm.service import ConfirmService
from gateway.confirm.web import confirm_routes
from gateway.console.routes import console_routes
from gateway.pipeline import Pipeline
from gateway.relay import NextHop
from gateway.settings import Settings
from gateway.store import Store


@dataclass
class WebContext:
    """What request handlers may use; built once by the app."""

    settings: Settings
    store: Store
    hop: NextHop
    pipeline: Pipeline | None = None  # None when the web service runs without SMTP (tests)
    confirm: ConfirmService | None = None  # None: one is made from settings and store


def build_app(ctx: WebContext) -> Starlette:
    """The ASGI app with every feature's routes."""
    routes: list[BaseRoute] = [
        Route("/healthz", _healthz),
        Route("/readyz", _readyz),
        *console_routes(ctx.settings, ctx.store, ctx.hop, ctx.pipeline.scanner if ctx.pipeline else None),
        *confirm_routes(ctx.confirm or ConfirmService(ctx.settings, ctx.store)),
    ]
    app = Starlette(routes=routes)
    app.state.ctx = ctx
    return app


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _readyz(request: Request) -> Response:
    ctx: WebContext = request.app.state.ctx
    ready = ctx.pipeline is not None
    return JSONResponse({"ready": ready}, status_code=200 if ready else 503)
