"""The gateway's web service: health endpoints, the security console, sender confirm pages.

One Starlette app served by uvicorn inside the `dlp-gateway run` process.
Each feature contributes its routes from its own module; this module only
assembles them and holds what they share.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.confirm.service import ConfirmService
from gateway.confirm.web import confirm_routes
from gateway.console.routes import console_routes
from gateway.metrics import CONTENT_TYPE, Metrics, scanner_state
from gateway.pipeline import Pipeline
from gateway.relay import NextHop
from gateway.settings import Settings
from gateway.store import Store

# A readiness probe that waits longer than this for the store calls it down.
STORE_PROBE_S = 3.0


@dataclass
class WebContext:
    """What request handlers may use; built once by the app."""

    settings: Settings
    store: Store
    hop: NextHop
    pipeline: Pipeline | None = None  # None when the web service runs without SMTP (tests)
    confirm: ConfirmService | None = None  # None: one is made from settings and store
    metrics: Metrics | None = None  # None: no /metrics (the web service alone, in tests)


def build_app(ctx: WebContext) -> Starlette:
    """The ASGI app with every feature's routes."""
    routes: list[BaseRoute] = [
        Route("/healthz", _healthz),
        Route("/readyz", _readyz),
        Route("/metrics", _metrics),
        *console_routes(ctx.settings, ctx.store, ctx.hop, ctx.pipeline.scanner if ctx.pipeline else None),
        *confirm_routes(ctx.confirm or ConfirmService(ctx.settings, ctx.store)),
    ]
    app = Starlette(routes=routes)
    app.state.ctx = ctx
    return app


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _readyz(request: Request) -> Response:
    """Ready to take mail: the store answers, the scanner workers are up, a policy is loaded."""
    ctx: WebContext = request.app.state.ctx
    checks = await readiness(ctx)
    ready = all(checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


async def readiness(ctx: WebContext) -> dict[str, bool]:
    """Each readiness check by name (all must hold)."""
    pipeline = ctx.pipeline
    return {
        "policy": pipeline is not None and pipeline.policy is not None,
        "scanner": pipeline is not None and scanner_state(pipeline.scanner)[0],
        "store": await _store_answers(ctx.store),
    }


async def _store_answers(store: Store) -> bool:
    """True if the store runs a trivial query within the probe's time."""

    def ping() -> None:
        with store.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    try:
        await asyncio.wait_for(asyncio.to_thread(ping), STORE_PROBE_S)
    except Exception:  # down, refusing, or too slow: not ready, whatever the cause
        return False
    return True


async def _metrics(request: Request) -> Response:
    """Prometheus exposition; counts and durations only, never message content."""
    ctx: WebContext = request.app.state.ctx
    if ctx.metrics is None:
        return Response("metrics not enabled\n", status_code=404)
    body = await asyncio.to_thread(ctx.metrics.render)  # it queries the outbox backlog
    return Response(body, media_type=CONTENT_TYPE)
