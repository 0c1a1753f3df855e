"""What security staff do to held messages: release or reject, with an audit entry each.

The CLI and the console call these same functions, so both follow the same
rules.  A message is claimed (held → releasing) before delivery, so two
reviewers acting at once cannot both deliver it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from gateway.act import decision_header
from gateway.relay import NextHop
from gateway.store import Store, StoredMessage

REVIEWABLE = ("held", "pending")


class ReviewError(Exception):
    """The action cannot be done (unknown id, already handled, next hop refused)."""


@dataclass(frozen=True)
class ReleaseResult:
    ident: str
    delivered: list[str]
    refused: dict[str, str]


async def release(
    store: Store, hop: NextHop, ident: str, actor: str, recipients: list[str] | None = None
) -> ReleaseResult:
    """Deliver a held message to all (or some) of its held recipients."""
    message = await asyncio.to_thread(_reviewable, store, ident)
    targets = _held_recipients(message)
    if recipients:
        unknown = [r for r in recipients if r not in targets]
        if unknown:
            raise ReviewError(f"{ident}: not a held recipient of this message: {', '.join(unknown)}")
        targets = recipients
    claimed = await asyncio.to_thread(
        store.transition, ident, REVIEWABLE, "releasing", actor, {"recipients": len(targets)}
    )
    if not claimed:
        raise ReviewError(f"{ident}: already being handled by someone else")
    options = dict(zip(message.recipients, message.rcpt_options, strict=False))
    delivery = await hop.deliver(
        message.sender,
        targets,
        decision_header("released", ident) + message.raw,
        message.mail_options,
        {r: options.get(r, []) for r in targets},
    )
    if not delivery.data.ok:
        await asyncio.to_thread(
            store.transition,
            ident,
            ("releasing",),
            "held",
            actor,
            {"error": "next hop did not accept the release", "reply": delivery.data.line()},
        )
        raise ReviewError(f"{ident}: next hop did not accept the release: {delivery.data.line()}")
    refused = {r: reply.line() for r, reply in delivery.recipients.items() if not reply.ok}
    await asyncio.to_thread(
        store.transition,
        ident,
        ("releasing",),
        "released",
        actor,
        {"delivered": delivery.accepted, "refused": refused, "reply": delivery.data.line()},
    )
    return ReleaseResult(ident, delivery.accepted, refused)


def reject(store: Store, ident: str, actor: str, reason: str = "") -> None:
    """Reject a held message: it is never delivered."""
    _reviewable(store, ident)
    if not store.transition(ident, REVIEWABLE, "rejected", actor, {"reason": reason}):
        raise ReviewError(f"{ident}: already handled by someone else")


def _reviewable(store: Store, ident: str) -> StoredMessage:
    message = store.get(ident)
    if message is None:
        raise ReviewError(f"{ident}: no such message")
    if message.status not in REVIEWABLE:
        raise ReviewError(f"{ident}: is {message.status}, not awaiting review")
    return message


def _held_recipients(message: StoredMessage) -> list[str]:
    held = [r for r, action in message.per_recipient.items() if action not in ("pass", "notify")]
    return held or list(message.recipients)
