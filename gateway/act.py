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

from gateway.model import Action, Decision, Envelope, ScanResult
from gateway.relay import HopError, Reply, Transaction
from gateway.store import Store, StoreError, new_id

log = logging.getLogger(__name__)

DELIVER_ACTIONS = (Action.PASS, Action.NOTIFY)
KEEP_ACTIONS = (Action.HOLD, Action.WARN, Action.REDACT)
STORE_DOWN = "451 4.3.0 Message store unavailable, try again later"


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
) -> Outcome:
    """Keep, deliver or refuse the message as decided; ``accepted`` are the recipients
    the next hop already accepted on ``transaction`` (None if the hop was down)."""
    ident = new_id()
    if decision.action is Action.REJECT:
        return Outcome(ident, f"550 5.7.1 {decision.reject_message} [{ident}]", [], [])
    to_deliver = [r for r in envelope.recipients if decision.per_recipient[r] in DELIVER_ACTIONS]
    to_keep = [r for r in envelope.recipients if decision.per_recipient[r] in KEEP_ACTIONS]
    if to_keep:
        try:
            await asyncio.to_thread(store.keep, "held", raw, envelope, scan, decision, ident)
        except (StoreError, OSError) as exc:
            log.error("store write failed for %s: %s", ident, exc)
            return Outcome(ident, STORE_DOWN, [], [])
    if not to_deliver:
        return Outcome(ident, f"250 2.0.0 Held for review [{ident}]", [], to_keep)
    reply = await _deliver(raw, envelope, ident, decision, transaction, accepted, to_deliver)
    if not reply.ok and to_keep:
        await _withdraw(store, ident, reply)
        to_keep = []
    if not reply.ok:
        return Outcome(ident, reply.line(), [], [])
    text = f"{reply.line()} [{ident}]"
    if to_keep:
        text = f"250 2.0.0 Delivered to {len(to_deliver)}, held {len(to_keep)} for review [{ident}]"
    return Outcome(ident, text, to_deliver, to_keep)


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
        await asyncio.to_thread(store.transition, ident, ("held",), "withdrawn", "gateway", detail)
    except StoreError as exc:
        log.error("could not withdraw %s after failed delivery: %s", ident, exc)
