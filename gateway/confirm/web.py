"""The sender's confirmation page: GET shows the summary and the form, POST acts on it.

Works without JavaScript.  GET never changes anything (link scanners and
previews fetch it); POST needs the form token tied to this confirmation.
Pages are never cached, never framed, and send no referrer (the URL holds the token).
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.confirm.answers import Answer
from gateway.confirm.service import ConfirmService

MAX_FIELD = 4000
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    ),
}


def confirm_routes(service: ConfirmService) -> list[BaseRoute]:
    """The routes ``gateway.web`` mounts."""

    async def show(request: Request) -> Response:
        token = request.path_params["token"]
        page = await asyncio.to_thread(service.page, token)
        if isinstance(page, Answer):
            return _answer(service, page)
        html = service.templates.render(
            "page_confirm.html",
            summary=page.summary,
            csrf=page.csrf,
            expires=page.expires,
            min_chars=page.min_chars,
            error="",
            justification="",
        )
        return HTMLResponse(html, headers=HEADERS)

    async def submit(request: Request) -> Response:
        token = request.path_params["token"]
        async with request.form(max_files=0, max_fields=10) as form:
            action = str(form.get("action", ""))[:MAX_FIELD]
            justification = str(form.get("justification", ""))[:MAX_FIELD]
            csrf = str(form.get("csrf", ""))[:MAX_FIELD]
        answer = await asyncio.to_thread(service.act, token, action, justification, csrf)
        if answer.code == "too_short":
            return await _again(service, token, answer, justification)
        return _answer(service, answer)

    return [
        Route("/confirm/{token}", show, methods=["GET"]),
        Route("/confirm/{token}", submit, methods=["POST"]),
    ]


async def _again(service: ConfirmService, token: str, answer: Answer, justification: str) -> Response:
    """The form again, with what was typed and why it was not accepted."""
    page = await asyncio.to_thread(service.page, token)
    if isinstance(page, Answer):
        return _answer(service, page)
    html = service.templates.render(
        "page_confirm.html",
        summary=page.summary,
        csrf=page.csrf,
        expires=page.expires,
        min_chars=page.min_chars,
        error=f"{answer.text} (at least {page.min_chars} characters)",
        justification=justification,
    )
    return HTMLResponse(html, status_code=answer.http_status, headers=HEADERS)


def _answer(service: ConfirmService, answer: Answer) -> Response:
    html = service.templates.render("page_result.html", outcome=answer)
    return HTMLResponse(html, status_code=answer.http_status, headers=HEADERS)
