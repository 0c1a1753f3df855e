"""Dashboard, queue and message pages, and the reviewer actions on held messages.

Release and reject go through ``gateway.review`` (as the CLI does); the checks
for separation of duties and four eyes are in ``casework``.  Database work runs
in threads so the event loop, which also serves SMTP, never waits on it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.console import casework
from gateway.console.content import content_view, mask_with_excerpts
from gateway.console.context import BASE, Console, Viewer
from gateway.console.dashboard import bar_chart, load_dashboard
from gateway.console.queue import AGES, SORTS, QueueFilter, load_queue
from gateway.review import REVIEWABLE, ReviewError, held_recipients, reject, release
from gateway.store import StoredMessage

MAX_REASON = 1000
DONE_MESSAGES = {
    "released": "Released.",
    "rejected": "Rejected: it will not be delivered.",
    "approved": "First approval recorded; another reviewer can now release it.",
    "noted": "Note added.",
    "assigned": "Assigned.",
}


async def dashboard(console: Console, request: Request, viewer: Viewer) -> Response:
    board = await asyncio.to_thread(load_dashboard, console.store, console.zone)
    return console.render(request, "dashboard.html", viewer, board=board, chart=bar_chart(board.per_day))


async def queue(console: Console, request: Request, viewer: Viewer) -> Response:
    flt = QueueFilter.from_query(request.query_params)
    page = await asyncio.to_thread(load_queue, console.store, flt, console.settings.console.page_size)
    assigned = await asyncio.to_thread(casework.assignees, console.store, [i.id for i in page.items])
    return console.render(
        request,
        "queue.html",
        viewer,
        page=page,
        flt=flt,
        assigned=assigned,
        ages=list(AGES),
        sorts=SORTS,
        csrf=viewer.session.csrf,
    )


async def bulk_confirm(console: Console, request: Request, viewer: Viewer) -> Response:
    """Step one of a bulk action: show what would be done and ask for a reason."""
    form = await request.form()
    action = str(form.get("action", ""))
    idents = [str(i) for i in form.getlist("ids")][:500]
    if action not in ("release", "reject") or not idents:
        return _error(console, request, viewer, 400, "Choose one or more messages and an action.")
    found = await asyncio.to_thread(_load_many, console, idents)
    return console.render(
        request,
        "bulk_confirm.html",
        viewer,
        action=action,
        messages=found,
        csrf=viewer.session.csrf,
        error="",
    )


async def bulk_apply(console: Console, request: Request, viewer: Viewer) -> Response:
    """Step two: with a reason and the confirmation ticked, act on each message in turn."""
    form = await request.form()
    action = str(form.get("action", ""))
    idents = [str(i) for i in form.getlist("ids")][:500]
    reason = _reason(form)
    found = await asyncio.to_thread(_load_many, console, idents)
    if action not in ("release", "reject") or not found:
        return _error(console, request, viewer, 400, "Nothing to do.")
    if not reason or form.get("confirm") != "yes":
        return console.render(
            request,
            "bulk_confirm.html",
            viewer,
            400,
            action=action,
            messages=found,
            csrf=viewer.session.csrf,
            error="A reason and the confirmation are both required.",
        )
    outcomes: list[tuple[str, str]] = []
    for message in found:
        try:
            if action == "release":
                await _release(console, viewer, message, [], reason)
                outcomes.append((message.id, "released"))
            else:
                await asyncio.to_thread(reject, console.store, message.id, viewer.user.username, reason)
                outcomes.append((message.id, "rejected"))
        except (ReviewError, casework.CaseworkError) as exc:
            outcomes.append((message.id, f"not done: {exc}"))
    await asyncio.to_thread(
        console.store.record,
        viewer.user.username,
        f"bulk-{action}",
        None,
        {
            "reason": reason,
            "messages": [m.id for m in found],
            "done": sum(o[1] in ("released", "rejected") for o in outcomes),
        },
    )
    return console.render(request, "bulk_done.html", viewer, action=action, outcomes=outcomes)


@dataclass
class MessagePage:
    message: StoredMessage
    work: casework.Casework
    held: list[str]
    four_eyes: bool
    release_refusal: str
    approval_refusal: str
    audit: list[object]
    reviewers: list[str]


async def message_page(console: Console, request: Request, viewer: Viewer) -> Response:
    return await _show(console, request, viewer, reveal=False)


async def reveal(console: Console, request: Request, viewer: Viewer) -> Response:
    """Show the message unmasked, once, for a stated reason (audited first)."""
    form = await request.form()
    reason = _reason(form)
    ident = request.path_params["ident"]
    if not reason:
        return await _show(
            console, request, viewer, False, error="Say why you need to see the unmasked values."
        )
    await asyncio.to_thread(console.store.record, viewer.user.username, "revealed", ident, {"reason": reason})
    return await _show(console, request, viewer, reveal=True)


async def download(console: Console, request: Request, viewer: Viewer) -> Response:
    """The original message as a file, for a stated reason (audited first)."""
    form = await request.form()
    reason = _reason(form)
    ident = request.path_params["ident"]
    message = await asyncio.to_thread(console.store.get, ident)
    if message is None:
        return _error(console, request, viewer, 404, "No such message.")
    if not reason:
        return await _show(console, request, viewer, False, error="Say why you need the original message.")
    await asyncio.to_thread(
        console.store.record, viewer.user.username, "downloaded", ident, {"reason": reason}
    )
    return Response(
        message.raw,
        media_type="application/octet-stream",  # never displayed inline by the browser
        headers={"content-disposition": f'attachment; filename="{message.id}.eml"'},
    )


async def release_action(console: Console, request: Request, viewer: Viewer) -> Response:
    form = await request.form()
    ident = request.path_params["ident"]
    chosen = [str(r) for r in form.getlist("recipients")]
    message = await asyncio.to_thread(console.store.get, ident)
    if message is None:
        return _error(console, request, viewer, 404, "No such message.")
    if not chosen:
        return await _show(
            console, request, viewer, False, error="Choose at least one recipient to release to."
        )
    try:
        await _release(console, viewer, message, chosen, _reason(form))
    except (ReviewError, casework.CaseworkError) as exc:
        return await _show(console, request, viewer, False, error=str(exc), status=409)
    return _done(ident, "released")


async def reject_action(console: Console, request: Request, viewer: Viewer) -> Response:
    form = await request.form()
    ident = request.path_params["ident"]
    reason = _reason(form)
    if not reason:
        return await _show(console, request, viewer, False, error="A reason is required to reject.")
    notify = form.get("notify") == "yes"
    try:
        await asyncio.to_thread(reject, console.store, ident, viewer.user.username, reason, notify)
    except ReviewError as exc:
        return await _show(console, request, viewer, False, error=str(exc), status=409)
    if notify:
        await asyncio.to_thread(
            casework.request_notice, console.store, ident, "rejected", reason, viewer.user.username
        )
    return _done(ident, "rejected")


async def approve_action(console: Console, request: Request, viewer: Viewer) -> Response:
    form = await request.form()
    ident = request.path_params["ident"]
    message = await asyncio.to_thread(console.store.get, ident)
    if message is None or message.status not in REVIEWABLE:
        return _error(console, request, viewer, 409, "This message is not awaiting review.")
    refusal = casework.approval_refusal(
        viewer.user, message, console.settings.console, console.settings.internal_domains
    )
    if refusal:
        return await _show(console, request, viewer, False, error=refusal, status=403)
    try:
        await asyncio.to_thread(casework.approve, console.store, ident, viewer.user.username, _reason(form))
    except casework.CaseworkError as exc:
        return await _show(console, request, viewer, False, error=str(exc), status=409)
    return _done(ident, "approved")


async def note_action(console: Console, request: Request, viewer: Viewer) -> Response:
    form = await request.form()
    ident = request.path_params["ident"]
    try:
        await asyncio.to_thread(
            casework.add_note, console.store, ident, viewer.user.username, str(form.get("text", ""))
        )
    except casework.CaseworkError as exc:
        return await _show(console, request, viewer, False, error=str(exc), status=400)
    return _done(ident, "noted")


async def assign_action(console: Console, request: Request, viewer: Viewer) -> Response:
    form = await request.form()
    ident = request.path_params["ident"]
    assignee = str(form.get("assignee", ""))
    user = await asyncio.to_thread(console.accounts.get, assignee)
    if user is None or user.role.label == "auditor" or user.disabled:
        return await _show(console, request, viewer, False, error="Assign to an active reviewer.", status=400)
    await asyncio.to_thread(casework.assign, console.store, ident, user.username, viewer.user.username)
    return _done(ident, "assigned")


async def _release(
    console: Console, viewer: Viewer, message: StoredMessage, recipients: list[str], reason: str
) -> None:
    """Release through ``gateway.review`` after the separation-of-duties and four-eyes checks."""
    work = await asyncio.to_thread(casework.load, console.store, message.id)
    refusal = casework.release_refusal(
        viewer.user, message, console.settings.console, console.settings.internal_domains, work.approval
    )
    if refusal:
        raise casework.CaseworkError(refusal)
    detail_reason = reason
    if work.approval is not None:
        detail_reason = f"{reason} (first approval by {work.approval.approver})".strip()
    await release(
        console.store, console.hop, message.id, viewer.user.username, recipients or None, detail_reason
    )


async def _show(
    console: Console, request: Request, viewer: Viewer, reveal: bool, error: str = "", status: int = 200
) -> Response:
    ident = request.path_params["ident"]
    page = await asyncio.to_thread(_load_page, console, viewer, ident)
    if page is None:
        return _error(console, request, viewer, 404, "No such message.")
    content = await content_view(console.rescanner, page.message.raw, page.message.findings, reveal)
    done = DONE_MESSAGES.get(request.query_params.get("done", ""), "")
    return console.render(
        request,
        "message.html",
        viewer,
        status,
        page=page,
        m=page.message,
        subject=mask_with_excerpts(page.message.subject, page.message.findings),
        content=content,
        revealed=reveal,
        error=error,
        done=done,
        reviewable=page.message.status in REVIEWABLE,
        csrf=viewer.session.csrf,
    )


def _load_page(console: Console, viewer: Viewer, ident: str) -> MessagePage | None:
    message = console.store.get(ident)
    if message is None:
        return None
    work = casework.load(console.store, ident)
    c, domains = console.settings.console, console.settings.internal_domains
    reviewers = [u.username for u in console.accounts.all() if u.role.label != "auditor" and not u.disabled]
    return MessagePage(
        message=message,
        work=work,
        held=held_recipients(message),
        four_eyes=casework.needs_four_eyes(message, c),
        release_refusal=casework.release_refusal(viewer.user, message, c, domains, work.approval),
        approval_refusal=casework.approval_refusal(viewer.user, message, c, domains)
        if work.approval is None
        else "",
        audit=list(console.store.audit_trail(ident)),
        reviewers=reviewers,
    )


def _load_many(console: Console, idents: list[str]) -> list[StoredMessage]:
    found = []
    for ident in dict.fromkeys(idents):
        message = console.store.get(ident)
        if message is not None and message.status in REVIEWABLE:
            message.raw = b""  # the bulk pages never show content
            message.subject = mask_with_excerpts(message.subject, message.findings)
            found.append(message)
    return found


def _reason(form: FormData) -> str:
    return " ".join(str(form.get("reason", "")).split())[:MAX_REASON]


def _done(ident: str, what: str) -> Response:
    return RedirectResponse(f"{BASE}/messages/{ident}?done={what}", status_code=303)


def _error(console: Console, request: Request, viewer: Viewer, status: int, text: str) -> Response:
    return console.render(request, "error.html", viewer, status, title="Cannot do that", text=text)
