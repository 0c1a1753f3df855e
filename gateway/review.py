"""What security staff do to held messages: release or reject, with an audit entry each.

The CLI and the console call these same functions, so both follow the same
rules.  A message is claimed (held → releasing) before delivery, so two
reviewers acting at once cannot both deliver it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from gateway.act import decision_header
from gateway.history import SenderHistory
from gateway.outbox import DELIVERED, QUEUED, NewJob, OnDone, Outbox, Transition, deliver
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
    store: Store,
    hop: NextHop,
    ident: str,
    actor: str,
    recipients: list[str] | None = None,
    reason: str = "",
    outbox: Outbox | None = None,
) -> ReleaseResult:
    """Deliver a held message to all (or some) of its held recipients; ``reason`` goes in the audit.

    The delivery goes through the outbox (tried at once, retried by the gateway if the
    next hop defers it); the message is marked released only once the next hop said 250.
    """
    message = await asyncio.to_thread(_reviewable, store, ident)
    targets = _held_recipients(message)
    if recipients:
        unknown = [r for r in recipients if r not in targets]
        if unknown:
            raise ReviewError(f"{ident}: not a held recipient of this message: {', '.join(unknown)}")
        targets = recipients
    claim: dict[str, object] = {"recipients": len(targets)}
    if reason:
        claim["reason"] = reason
    outbox = outbox or Outbox(store)
    job = await asyncio.to_thread(
        outbox.transition_and_queue,
        Transition(ident, REVIEWABLE, "releasing", actor, claim),
        _release_job(message, targets, actor),
        True,
    )
    if job is None:
        raise ReviewError(f"{ident}: already being handled by someone else")
    # Deliver now, so whoever released sees the outcome.  Should this process die
    # first, the job's lease runs out and the gateway's outbox worker delivers it.
    outcome = await deliver(outbox, hop, job)
    if outcome.state == QUEUED:
        done = f"delivered to {len(outcome.delivered)}, " if outcome.delivered else ""
        raise ReviewError(
            f"{ident}: {done}next hop deferred the release ({outcome.reply}); queued, the gateway will retry"
        )
    if outcome.state != DELIVERED:
        raise ReviewError(f"{ident}: next hop did not accept the release: {outcome.reply}")
    # A reviewed, released message makes its domains known for this sender.
    await asyncio.to_thread(SenderHistory(store).record, message.sender, outcome.delivered)
    return ReleaseResult(ident, outcome.delivered, outcome.refused)


def _release_job(message: StoredMessage, targets: list[str], actor: str) -> NewJob:
    """The outbox job for a release: the kept bytes, marked released, to ``targets``."""
    options = dict(zip(message.recipients, message.rcpt_options, strict=False))
    return NewJob(
        purpose="release",
        sender=message.sender,
        recipients=tuple(targets),
        message=message.id,
        header=decision_header("released", message.id).decode("ascii"),
        mail_options=tuple(message.mail_options),
        rcpt_options={r: list(options.get(r, [])) for r in targets},
        on_done=OnDone("releasing", "released", "held"),
        actor=actor,
    )


def reject(store: Store, ident: str, actor: str, reason: str = "", notify_sender: bool = False) -> None:
    """Reject a held message: it is never delivered.  ``notify_sender`` records the wish
    that the sender be told (the audit entry carries it; the notice is sent elsewhere)."""
    _reviewable(store, ident)
    detail: dict[str, object] = {"reason": reason}
    if notify_sender:
        detail["notify_sender"] = True
    if not store.transition(ident, REVIEWABLE, "rejected", actor, detail):
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


def held_recipients(message: StoredMessage) -> list[str]:
    """The recipients a release would deliver to (those the policy did not let through)."""
    return _held_recipients(message)
