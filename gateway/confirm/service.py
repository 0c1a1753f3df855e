"""Warn and confirm, as the rest of the gateway sees it: one object per process.

The SMTP path calls ``keep_warned`` and ``announce`` (through ``gateway.act``)
and ``take_replies`` / ``is_own_notice`` (through ``gateway.smtp``); the web
routes call ``page`` and ``act``; the expiry task calls ``expire_due``.
Everything that must survive a crash is a store transaction; every notice
goes through the outbox.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from email.message import Message
from typing import Any

import sqlalchemy as sa

from gateway.confirm import ledger
from gateway.confirm.answers import ANSWERS, Answer
from gateway.confirm.guard import NoticeBudget, NoticeGuard, headers_of, is_automatic
from gateway.confirm.notices import NoticeWriter, Templates
from gateway.confirm.replies import parse_reply, reply_address, token_of
from gateway.confirm.summary import Summary, safe_subject, summarise
from gateway.confirm.tokens import NOTICE_HEADER, form_token, form_token_ok, installation_key, is_own_notice
from gateway.model import Action, Decision, Envelope, RuleHit, ScanResult
from gateway.outbox import NewJob, Outbox, Transition, move_message
from gateway.settings import Settings
from gateway.store import Store, StoreError

log = logging.getLogger(__name__)

REPLY_TAKEN = "250 2.0.0 Confirmation reply received"
REPLY_STORE_DOWN = "451 4.3.0 Message store unavailable, try again later"
STORE_ERRORS = (StoreError, sa.exc.SQLAlchemyError, OSError)


@dataclass(frozen=True)
class ConfirmPage:
    """What the confirmation page shows."""

    summary: Summary
    csrf: str
    expires: str
    min_chars: int


class ConfirmService:
    """Sender notices, confirmations by link and by reply, and their expiry."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        outbox: Outbox | None = None,
        wake: Callable[[], None] | None = None,
    ):
        self.settings = settings
        self.store = store
        self.outbox = outbox or Outbox(store, settings.outbox)
        self.wake = wake or (lambda: None)
        self.guard = NoticeGuard(settings.internal_domains, settings.gateway_address)
        self.budget = NoticeBudget(store, settings.confirm.notices_per_sender_per_hour)
        self.templates = Templates(settings.confirm.template_dir)
        self._key: bytes | None = None

    # -- keys --------------------------------------------------------------

    def key(self) -> bytes:
        """The installation key (read from the store once; the store must be migrated)."""
        if self._key is None:
            self._key = installation_key(self.store)
        return self._key

    def writer(self) -> NoticeWriter:
        return NoticeWriter(self.templates, self.settings.gateway_address, self.key())

    # -- the SMTP path -----------------------------------------------------

    async def keep_warned(
        self, raw: bytes, envelope: Envelope, scan: ScanResult, decision: Decision, ident: str
    ) -> str:
        """Commit a warned message: "pending" if its sender may be asked, else "held" for staff."""
        reason = self.guard.refusal(headers_of(raw), envelope.sender)
        try:
            if reason is None and not await asyncio.to_thread(self.budget.take, envelope.sender):
                reason = "notice limit for this sender reached"
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"store unavailable: {exc}") from exc
        status = "pending" if reason is None else "held"
        await asyncio.to_thread(self.store.keep, status, raw, envelope, scan, decision, ident)
        if reason is not None:
            await self._record_quietly("notice-withheld", ident, {"reason": reason})
        return status

    async def announce(
        self,
        ident: str,
        status: str,
        raw: bytes,
        envelope: Envelope,
        scan: ScanResult,
        decision: Decision,
        delivered: list[str],
    ) -> None:
        """After the SMTP outcome: ask a pending message's sender, or tell a notify sender to take care.

        Never raises: the client's answer is already decided.
        """
        try:
            if status == "pending":
                await asyncio.to_thread(self._ask_sender, ident, raw, envelope, scan, decision)
            elif any(decision.per_recipient.get(r) is Action.NOTIFY for r in delivered):
                await asyncio.to_thread(self._tell_sender, ident, raw, envelope, scan, decision, delivered)
        except STORE_ERRORS as exc:
            log.error("could not queue the notice for %s: %s", ident, exc)
            if status == "pending":
                # Nobody could confirm it now: security staff decide instead.
                detail = {"reason": "the notice to the sender could not be queued"}
                await self._move_quietly(Transition(ident, ("pending",), "held", "gateway", detail))
        self.wake()

    def _ask_sender(
        self, ident: str, raw: bytes, envelope: Envelope, scan: ScanResult, decision: Decision
    ) -> None:
        kept = [
            r for r in envelope.recipients if decision.per_recipient[r] not in (Action.PASS, Action.NOTIFY)
        ]
        subject = safe_subject(scan.subject, scan.findings)
        summary = summarise(
            ident, subject, envelope.sender, kept, scan.findings, [h.to_json() for h in decision.hits]
        )
        lifetime = self.settings.confirm.token_lifetime_s
        writer = self.writer()  # before the transaction: the key may need a write of its own
        with self.store.engine.begin() as conn:
            keyring = self.store.keyring
            token = ledger.open_confirmation(conn, ident, envelope.sender, subject, lifetime, keyring)
            expires = ledger.find(conn, token, keyring)
            assert expires is not None
            reply_to = reply_address(token, self.settings.gateway_address)
            context = {
                "summary": summary,
                "link": self.link(token),
                "reply_address": reply_to,
                "expires": _when(expires.expires_at),
                "expiry_action": self.settings.confirm.expiry_action,
            }
            notice = writer.compose(
                "warn",
                envelope.sender,
                context,
                reply_to=reply_to,
                in_reply_to=_message_id(raw),
            )
            self._queue_notice(conn, "warn", envelope.sender, notice, ident)

    def _tell_sender(
        self,
        ident: str,
        raw: bytes,
        envelope: Envelope,
        scan: ScanResult,
        decision: Decision,
        delivered: list[str],
    ) -> None:
        if self.guard.refusal(headers_of(raw), envelope.sender) is not None or not self.budget.take(
            envelope.sender
        ):
            return
        notified = [r for r in delivered if decision.per_recipient.get(r) is Action.NOTIFY]
        subject = safe_subject(scan.subject, scan.findings)
        summary = summarise(
            ident, subject, envelope.sender, notified, scan.findings, [h.to_json() for h in decision.hits]
        )
        notice = self.writer().compose(
            "notify", envelope.sender, {"summary": summary}, in_reply_to=_message_id(raw)
        )
        with self.store.engine.begin() as conn:
            self._queue_notice(conn, "notify", envelope.sender, notice, ident)

    def _queue_notice(self, conn: Any, kind: str, to: str, notice: bytes, ident: str | None) -> None:
        job = NewJob(
            purpose=f"notice:{kind}",
            sender=self.settings.gateway_address,
            recipients=(to,),
            raw=notice,
            message=ident,
        )
        self.outbox.insert(conn, job)

    def link(self, token: str) -> str:
        return f"{self.settings.console.public_url.rstrip('/')}/confirm/{token}"

    def is_reply_address(self, address: str) -> bool:
        return token_of(address, self.settings.gateway_address) is not None

    async def take_replies(self, raw: bytes, envelope: Envelope) -> tuple[Envelope, str | None]:
        """Handle replies to confirmation addresses; return the envelope left to scan, and the
        SMTP answer if nothing is left."""
        tokens = {r: token_of(r, self.settings.gateway_address) for r in envelope.recipients}
        ours = {r: t for r, t in tokens.items() if t is not None}
        if not ours:
            return envelope, None
        headers = headers_of(raw)
        if is_automatic(headers) is None:  # an out-of-office answer to a notice is ignored
            try:
                for token in ours.values():
                    await asyncio.to_thread(self._answer_reply, raw, headers, envelope.sender, token)
            except STORE_ERRORS as exc:
                log.error("could not handle a confirmation reply: %s", exc)
                return envelope, REPLY_STORE_DOWN
            self.wake()
        kept = [(r, o) for r, o in zip(envelope.recipients, _padded(envelope), strict=True) if r not in ours]
        if not kept:
            return envelope, REPLY_TAKEN
        rest = replace(envelope, recipients=tuple(r for r, _ in kept), rcpt_options=tuple(o for _, o in kept))
        return rest, None

    def _answer_reply(self, raw: bytes, headers: Message, sender: str, token: str) -> None:
        command = parse_reply(raw)
        answer, ident = self._choose(token, command.action, command.justification, "reply", sender)
        log.info("confirmation reply from %s: %s", sender, answer.code)
        if self.guard.refusal(headers, sender) is not None or not self.budget.take(sender):
            return
        subject = self._subject_of(ident) if ident else ""
        context = {"outcome": answer, "subject": subject, "ident": ident or ""}
        notice = self.writer().compose("result", sender, context, in_reply_to=_message_id(raw))
        with self.store.engine.begin() as conn:
            self._queue_notice(conn, "result", sender, notice, ident)

    async def is_own_notice(self, raw: bytes) -> bool:
        """Whether this is one of our notices coming back through the gateway (pass it, unscanned)."""
        value = headers_of(raw).get(NOTICE_HEADER)
        if value is None:
            return False
        try:
            key = await asyncio.to_thread(self.key)
        except STORE_ERRORS:
            return False  # cannot tell: scan it like any other message
        return is_own_notice(key, raw, str(value))

    # -- the web pages -----------------------------------------------------

    def page(self, token: str) -> ConfirmPage | Answer:
        """The confirmation page's content, or why there is none."""
        with self.store.engine.connect() as conn:
            found = ledger.find(conn, token, self.store.keyring)
            refusal = ledger.usable(found, ledger.message_status(conn, found.message) if found else None)
        if refusal is not None or found is None:
            return refusal or ANSWERS["invalid"]
        message = self.store.get(found.message)
        if message is None:
            return ANSWERS["invalid"]
        kept = [
            r for r, a in message.per_recipient.items() if a not in ("pass", "notify")
        ] or message.recipients
        summary = summarise(message.id, found.subject, message.sender, kept, message.findings, message.rules)
        return ConfirmPage(
            summary,
            form_token(self.key(), found.token_hash),
            _when(found.expires_at),
            self.settings.confirm.justification_min_chars,
        )

    def act(self, token: str, action: str, justification: str, csrf: str) -> Answer:
        """A form submission: check the form token, then send or cancel."""
        with self.store.engine.connect() as conn:
            found = ledger.find(conn, token, self.store.keyring)
        if found is None:
            return ANSWERS["invalid"]
        if not form_token_ok(self.key(), found.token_hash, csrf):
            return ANSWERS["bad_form"]
        answer, _ = self._choose(token, action, justification, "link", None)
        return answer

    def _choose(
        self, token: str, action: str, justification: str, via: str, from_sender: str | None
    ) -> tuple[Answer, str | None]:
        if action not in ("send", "cancel"):
            return ANSWERS["unclear"], None
        justification = " ".join(justification.split())
        if action == "send" and len(justification) < max(self.settings.confirm.justification_min_chars, 1):
            return ANSWERS["too_short"], None
        cancel_to = "cancelled" if self.settings.confirm.cancel_action == "discard" else "held"
        choice = ledger.Choice(action, via, justification, from_sender)
        answer, ident = ledger.resolve(self.outbox, token, choice, cancel_to)
        if answer.changed:
            self.wake()
        return answer, ident

    def _subject_of(self, ident: str) -> str:
        table = ledger.confirmations
        with self.store.engine.connect() as conn:
            row = conn.execute(
                sa.select(table.c.token_hash, table.c.subject).where(table.c.message == ident)
            ).first()
        if row is None:
            return ""
        return self.store.keyring.open_text(row.subject, ledger.subject_slot(row.token_hash))

    # -- expiry ------------------------------------------------------------

    def expire_due(self) -> int:
        """Expire what is overdue, telling each sender what became of their message."""
        to_status = "expired" if self.settings.confirm.expiry_action == "discard" else "held"
        expired = ledger.expire_due(self.outbox, to_status, self.settings.confirm.token_lifetime_s)
        for item in expired:
            if not self.budget.take(item.sender):
                continue
            summary = Summary(item.message, item.subject, item.sender, (), (), ())
            context = {"summary": summary, "expiry_action": self.settings.confirm.expiry_action}
            notice = self.writer().compose("expired", item.sender, context)
            with self.store.engine.begin() as conn:
                self._queue_notice(conn, "expired", item.sender, notice, item.message)
        if expired:
            self.wake()
        return len(expired)

    # -- helpers -----------------------------------------------------------

    async def _record_quietly(self, action: str, ident: str, detail: dict[str, Any]) -> None:
        try:
            await asyncio.to_thread(self.store.record, "gateway", action, ident, detail)
        except STORE_ERRORS as exc:
            log.error("could not audit %s for %s: %s", action, ident, exc)

    async def _move_quietly(self, change: Transition) -> None:
        def move() -> None:
            with self.store.engine.begin() as conn:
                move_message(self.store, conn, change)

        try:
            await asyncio.to_thread(move)
        except STORE_ERRORS as exc:
            log.error("could not move %s to %s: %s", change.ident, change.to_status, exc)


async def run_expiry(service: ConfirmService, interval_s: float) -> None:
    """Expire overdue confirmations every ``interval_s`` until cancelled."""
    while True:
        try:
            await asyncio.to_thread(service.expire_due)
        except STORE_ERRORS as exc:
            log.error("confirmation expiry failed, will try again: %s", exc)
        await asyncio.sleep(interval_s)


def own_notice_verdict(raw: bytes, envelope: Envelope) -> tuple[ScanResult, Decision]:
    """Pass, unscanned: the verdict for one of our own (signed) notices passing back through."""
    scan = ScanResult([], [], [], "", "", {}, len(raw))
    hit = RuleHit("gateway-notice", Action.PASS, "The gateway's own notice to a sender (not scanned).")
    return scan, Decision(dict.fromkeys(envelope.recipients, Action.PASS), [hit])


def _padded(envelope: Envelope) -> tuple[tuple[str, ...], ...]:
    options = list(envelope.rcpt_options)
    return tuple(options + [()] * (len(envelope.recipients) - len(options)))


def _message_id(raw: bytes) -> str:
    value = headers_of(raw).get("Message-ID")
    return " ".join(str(value).split()) if value else ""


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


__all__ = ["ConfirmPage", "ConfirmService", "own_notice_verdict", "run_expiry"]
