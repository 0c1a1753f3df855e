"""The act stage: carry out a decision and say what to answer the SMTP client.

Order matters for "never lose mail, never duplicate it": a held copy is
committed first, then the passing recipients are delivered; if that delivery
fails transiently the held copy is withdrawn and the client told 451, so its
retry starts from a clean slate.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

from gateway.model import Action, Decision, Envelope, ScanResult
from gateway.redact import redact_message, tag_message
from gateway.relay import HopError, Reply, Transaction
from gateway.store import Store, StoreError, new_id

log = logging.getLogger(__name__)

# A redacted copy is delivered; a redaction that cannot be done becomes a hold (see prepare).
DELIVER_ACTIONS = (Action.PASS, Action.NOTIFY, Action.REDACT)
KEEP_ACTIONS = (Action.HOLD, Action.WARN)
STORE_DOWN = "451 4.3.0 Message store unavailable, try again later"
# How a kept message is described in the reply, by the status it was kept with.
KEPT_TEXT = {"held": "Held for review", "pending": "Awaiting the sender's confirmation"}
KEPT_SOME = {"held": "held {n} for review", "pending": "{n} awaiting the sender's confirmation"}
# Up to this size a message is tagged on the event loop (byte copies of well under a millisecond).
INLINE_PREPARE_BYTES = 1024 * 1024


class SenderNotices(Protocol):
    """Warn and confirm (``gateway.confirm.service.ConfirmService``), as this stage uses it."""

    async def keep_warned(
        self, raw: bytes, envelope: Envelope, scan: ScanResult, decision: Decision, ident: str
    ) -> str: ...

    async def announce(
        self,
        ident: str,
        status: str,
        raw: bytes,
        envelope: Envelope,
        scan: ScanResult,
        decision: Decision,
        delivered: list[str],
    ) -> None: ...


def decision_header(label: str, ident: str) -> bytes:
    """The ``X-DLP-Decision`` header line every relayed message carries."""
    return f"X-DLP-Decision: {label}; id={ident}\r\n".encode("ascii")


@dataclass
class Outcome:
    """What happened to a message, for the reply and the log line."""

    ident: str
    reply: str
    delivered: list[str]
    held: list[str]


async def carry_out(
    raw: bytes,
    envelope: Envelope,
    scan: ScanResult,
    decision: Decision,
    store: Store,
    transaction: Transaction | None,
    accepted: list[str],
    notices: SenderNotices | None = None,
) -> Outcome:
    """Keep, deliver or refuse the message as decided; ``accepted`` are the recipients
    the next hop already accepted on ``transaction`` (None if the hop was down)."""
    ident = new_id()
    if decision.action is Action.REJECT:
        return Outcome(ident, f"550 5.7.1 {decision.reject_message} [{ident}]", [], [])
    outgoing = await _prepared(raw, scan, decision)
    to_deliver = [r for r in envelope.recipients if decision.per_recipient[r] in DELIVER_ACTIONS]
    to_keep = [r for r in envelope.recipients if decision.per_recipient[r] in KEEP_ACTIONS]
    status = "held"
    if to_keep:
        try:
            if decision.action is Action.WARN and notices is not None:
                # Pending for its sender when they may be asked, else held for staff.
                status = await notices.keep_warned(raw, envelope, scan, decision, ident)
            else:
                await asyncio.to_thread(store.keep, status, raw, envelope, scan, decision, ident)
        except (StoreError, OSError) as exc:
            log.error("store write failed for %s: %s", ident, exc)
            return Outcome(ident, STORE_DOWN, [], [])
    if not to_deliver:
        await _send_copies(raw, envelope, ident, decision, transaction)
        if notices is not None:
            await notices.announce(ident, status, raw, envelope, scan, decision, [])
        return Outcome(ident, f"250 2.0.0 {KEPT_TEXT[status]} [{ident}]", [], to_keep)
    reply = await _deliver(outgoing, envelope, ident, decision, transaction, accepted, to_deliver)
    if not reply.ok and to_keep:
        await _withdraw(store, ident, reply)
        to_keep = []
    if not reply.ok:
        return Outcome(ident, reply.line(), [], [])
    await _send_copies(raw, envelope, ident, decision, transaction)
    text = f"{reply.line()} [{ident}]"
    if to_keep:
        kept = KEPT_SOME[status].format(n=len(to_keep))
        text = f"250 2.0.0 Delivered to {len(to_deliver)}, {kept} [{ident}]"
    if notices is not None:
        await notices.announce(ident, status if to_keep else "", raw, envelope, scan, decision, to_deliver)
    return Outcome(ident, text, to_deliver, to_keep)


async def _prepared(raw: bytes, scan: ScanResult, decision: Decision) -> bytes:
    """``prepare`` off the event loop when it redacts (it parses and rewrites MIME) or
    the message is large; tagging a small one is cheaper than the hop to a thread."""
    if len(raw) > INLINE_PREPARE_BYTES or decision.recipients_with(Action.REDACT):
        return await asyncio.to_thread(prepare, raw, scan, decision)
    return prepare(raw, scan, decision)


def prepare(raw: bytes, scan: ScanResult, decision: Decision) -> bytes:
    """The copy to deliver: redacted if any recipient's action is redact, then tagged.

    One copy goes to every delivered recipient, so when some are to get it
    redacted, all do (safer than sending two versions).  If redaction is not
    possible, those recipients are held instead (recorded in ``decision.notes``).
    """
    to_redact = decision.recipients_with(Action.REDACT)
    if to_redact:
        redacted = redact_message(raw, scan.findings, decision.redactions)
        if redacted.raw is None:
            for rcpt in to_redact:
                decision.per_recipient[rcpt] = Action.HOLD
            decision.notes.append(f"redaction not possible ({redacted.reason}): held instead")
        else:
            raw = redacted.raw
    return tag_message(raw, decision.add_headers, decision.subject_prefix)


async def _send_copies(
    raw: bytes, envelope: Envelope, ident: str, decision: Decision, transaction: Transaction | None
) -> None:
    """Copy the original to the compliance mailboxes on the same connection (best effort:
    the message itself is already safe, so a failed copy is logged, not retried)."""
    if not decision.copy_to:
        return
    if transaction is None:
        log.error("compliance copy of %s not sent: next hop unavailable", ident)
        return
    try:
        await transaction.reset(envelope.sender, list(envelope.mail_options))
        accepted = [r for r in decision.copy_to if (await transaction.rcpt(r, [])).ok]
        reply = await transaction.data(decision_header("copy", ident) + raw) if accepted else None
    except HopError as exc:
        log.error("compliance copy of %s not sent: %s", ident, exc.reply.line())
        return
    if reply is None or not reply.ok:
        log.error("compliance copy of %s refused by next hop", ident)


async def _deliver(
    raw: bytes,
    envelope: Envelope,
    ident: str,
    decision: Decision,
    transaction: Transaction | None,
    accepted: list[str],
    to_deliver: list[str],
) -> Reply:
    if transaction is None:
        return Reply(451, "4.4.1 Next hop unavailable, try again later")
    label = max(decision.per_recipient[r] for r in to_deliver).label
    body = decision_header(label, ident) + raw
    if set(to_deliver) != set(accepted):
        # Some recipients the hop accepted must not receive it: start the transaction over.
        try:
            await transaction.reset(envelope.sender, list(envelope.mail_options))
        except HopError as exc:
            return exc.reply
        options = dict(zip(envelope.recipients, envelope.rcpt_options, strict=False))
        for rcpt in to_deliver:
            answer = await transaction.rcpt(rcpt, list(options.get(rcpt, ())))
            if not answer.ok:
                return answer
    return await transaction.data(body)


async def _withdraw(store: Store, ident: str, reply: Reply) -> None:
    """Undo a held copy when the client will be told to retry the whole message."""
    detail = {"reason": "delivery to the other recipients failed; client will retry", "reply": reply.code}
    try:
        await asyncio.to_thread(store.transition, ident, ("held", "pending"), "withdrawn", "gateway", detail)
    except StoreError as exc:
        log.error("could not withdraw %s after failed delivery: %s", ident, exc)
