"""The SMTP side: an aiosmtpd server that proxies the envelope to the next hop live
and answers DATA only once the message is delivered or safely stored.

RCPT replies mirror the next hop's, recipient by recipient, so the upstream MTA
bounces or retries exactly the recipients the next hop would have.  Scanning
happens at end of DATA, in the worker pool; anything that goes wrong before a
safe outcome is a 4xx, so the upstream MTA keeps the message and retries.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import ssl
import time
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as SmtpEnvelope

from gateway.act import carry_out
from gateway.confirm.service import ConfirmService, own_notice_verdict
from gateway.confirm.tokens import NOTICE_HEADER
from gateway.history import HistoryRecorder
from gateway.metrics import Metrics
from gateway.model import Decision, Envelope, ScanResult
from gateway.pipeline import Pipeline
from gateway.relay import HopError, NextHop, Transaction
from gateway.settings import SmtpSettings
from gateway.workers import ScanFailed

log = logging.getLogger(__name__)

BUSY = "451 4.3.2 Gateway busy, try again later"
SCAN_FAILED = "451 4.3.0 Message could not be scanned, try again later"
INTERNAL_ERROR = "451 4.3.0 Internal error, try again later"
# The notice header's name at the start of a line: a byte search that rules out
# parsing the headers of every message just to look for it.
NOTICE_LINE = re.compile(rb"^%s[ \t]*:" % re.escape(NOTICE_HEADER.encode()), re.IGNORECASE | re.MULTILINE)


class GatewaySMTP(SMTP):
    """aiosmtpd's SMTP with client-network access control and a session limit."""

    def __init__(self, handler: Handler, settings: SmtpSettings, tls: ssl.SSLContext | None, **kwargs: Any):
        super().__init__(
            handler,
            data_size_limit=settings.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=settings.hostname,
            ident="dlp-gateway",
            tls_context=tls,
            require_starttls=settings.require_tls and tls is not None,
            timeout=settings.idle_timeout_s,
            **kwargs,
        )
        self.gateway = handler

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        starting_tls = self.transport is not None  # STARTTLS re-enters here
        super().connection_made(transport)
        if starting_tls:
            return
        refusal = self.gateway.admit(transport.get_extra_info("peername"))
        if self.gateway.metrics is not None:
            self.gateway.metrics.session_admitted(refusal)
        if refusal:
            if isinstance(transport, asyncio.WriteTransport):
                transport.write(refusal.encode() + b"\r\n")
            transport.close()
            return
        self.gateway.sessions += 1
        self._counted = True

    def connection_lost(self, error: Exception | None) -> None:
        if getattr(self, "_counted", False):
            self.gateway.sessions -= 1
            self._counted = False
        self.gateway.end_transaction(self.session)
        super().connection_lost(error)


class Handler:
    """aiosmtpd handler hooks: one small method per SMTP command we care about."""

    def __init__(
        self, settings: SmtpSettings, hop: NextHop, pipeline: Pipeline, confirm: ConfirmService | None = None
    ):
        self.settings = settings
        self.hop = hop
        self.pipeline = pipeline
        self.confirm = confirm  # warn and confirm; None: warned mail is simply held
        self.networks = [ipaddress.ip_network(n, strict=False) for n in settings.allowed_networks]
        self.sessions = 0
        self.in_flight = 0
        self.metrics: Metrics | None = None  # set by the Gateway that serves /metrics
        # Open next-hop transactions by session; closed on RSET, after DATA and on disconnect.
        self._hop: dict[int, Transaction | None] = {}
        self._closing: set[asyncio.Task[None]] = set()  # transactions being closed, kept till done
        self.history = HistoryRecorder(pipeline.history)

    def admit(self, peer: Any) -> str | None:
        """None if this client may use us, else the line to refuse it with."""
        host = peer[0] if isinstance(peer, tuple) else ""
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return "554 5.7.1 Access denied"
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if not any(address in net for net in self.networks):
            log.warning("refused connection from %s: not in allowed networks", address)
            return "554 5.7.1 Access denied: relaying not permitted for your network"
        if self.sessions >= self.settings.max_sessions:
            return "421 4.3.2 Too many connections, try again later"
        return None

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: SmtpEnvelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        # aiosmtpd reads commands one at a time from a buffered stream, so
        # pipelined commands already work; we only need to say so.
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: SmtpEnvelope, address: str, options: list[str]
    ) -> str:
        self.end_transaction(session)
        try:
            self._hop[id(session)] = await self.hop.open(address, options)
        except HopError as exc:
            if not exc.reply.transient:
                return exc.reply.line()
            # The hop is down: still take the message, since it may be held
            # rather than relayed; DATA answers 451 if it had to be relayed.
            self._hop[id(session)] = None
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: SmtpEnvelope, address: str, options: list[str]
    ) -> str:
        transaction = self._hop.get(id(session))
        if self.confirm is not None and self.confirm.is_reply_address(address):
            transaction = None  # a reply to one of our notices: answered here, never relayed
        if transaction is not None:
            reply = await transaction.rcpt(address, options)
            if not reply.ok:
                return reply.line()
        envelope.rcpt_tos.append(address)
        # One list per recipient (aiosmtpd's default flattens them), so each
        # recipient's DSN parameters travel with it to the next hop.
        envelope.rcpt_options.append(options)  # type: ignore[arg-type]
        return "250 2.1.5 Ok"

    async def handle_RSET(self, server: SMTP, session: Session, envelope: SmtpEnvelope) -> str:
        self.end_transaction(session)
        return "250 2.0.0 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: SmtpEnvelope) -> str:
        transaction = self._hop.pop(id(session), None)
        reply = INTERNAL_ERROR
        try:
            reply = await self._process(session, envelope, transaction)
            return reply
        except Exception:
            # aiosmtpd would answer an escaped exception with a permanent 500,
            # and the upstream MTA would bounce the message: never let it.
            log.exception("internal error while processing a message; answering 451")
            return INTERNAL_ERROR
        finally:
            if self.metrics is not None:
                self.metrics.observe_reply(reply)
            if transaction is not None:
                await transaction.close()

    async def _process(
        self, session: Session, envelope: SmtpEnvelope, transaction: Transaction | None
    ) -> str:
        env = _envelope(session, envelope)
        raw = envelope.original_content or b""
        if self.confirm is not None:
            env, answer = await self.confirm.take_replies(raw, env)
            if answer is not None:
                return answer
        if self.in_flight >= self.settings.max_in_flight:
            return BUSY
        self.in_flight += 1
        started = time.perf_counter()
        try:
            scan, decision = await self._evaluate(raw, env)
        except ScanFailed as exc:
            log.error("scan failed (%s); answering 451", exc)
            return SCAN_FAILED
        finally:
            self.in_flight -= 1
        accepted = list(env.recipients) if transaction else []
        store = self.pipeline.store
        scanned = time.perf_counter()
        outcome = await carry_out(raw, env, scan, decision, store, transaction, accepted, self.confirm)
        done = time.perf_counter()
        stages = {"scan": scanned - started, "act": done - scanned}
        self.pipeline.log_outcome(env, scan, decision, outcome, done - started, stages)
        await self.history.add(env.sender, outcome.delivered)
        return outcome.reply

    async def _evaluate(self, raw: bytes, env: Envelope) -> tuple[ScanResult, Decision]:
        if self.confirm is not None and may_be_notice(raw) and await self.confirm.is_own_notice(raw):
            # One of our own notices coming back: pass it, never scan it into another notice.
            return own_notice_verdict(raw, env)
        return await self.pipeline.evaluate(raw, env)

    def end_transaction(self, session: Session | None) -> None:
        """Close any next-hop transaction this session left open."""
        transaction = self._hop.pop(id(session), None)
        if transaction is not None:
            task = asyncio.get_running_loop().create_task(transaction.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def drain(self) -> None:
        """Finish what runs after replies: transactions being closed, history records."""
        await asyncio.gather(*self._closing, return_exceptions=True)
        await self.history.flush()


def may_be_notice(raw: bytes) -> bool:
    """Whether the header section could carry our notice header (else no need to parse it)."""
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    return NOTICE_LINE.search(raw, 0, min(ends) + 2 if ends else len(raw)) is not None


def _envelope(session: Session, envelope: SmtpEnvelope) -> Envelope:
    peer = session.peer
    return Envelope(
        sender=envelope.mail_from or "",
        recipients=tuple(envelope.rcpt_tos),
        mail_options=tuple(envelope.mail_options),
        rcpt_options=tuple(tuple(o) for o in envelope.rcpt_options),
        client_address=peer[0] if isinstance(peer, tuple) else str(peer),
        helo=session.host_name or "",
    )


def server_factory(
    handler: Handler, settings: SmtpSettings, tls: ssl.SSLContext | None
) -> Callable[[], SMTP]:
    """A protocol factory for ``loop.create_server``."""
    return lambda: GatewaySMTP(handler, settings, tls)


def tls_context(settings: SmtpSettings) -> ssl.SSLContext | None:
    """A server TLS context for STARTTLS, when a certificate is configured."""
    if not settings.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context
