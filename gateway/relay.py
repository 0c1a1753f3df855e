"""The next hop: an SMTP client that relays with the original envelope and reports
every reply, so the gateway can mirror the next hop's answers to its own client.

The running gateway keeps finished connections open for the next transaction
(``pool_size``): connecting, EHLO and QUIT once per message cost the event loop
and the hop more than relaying the message itself.  A reused connection is only
ever given a new MAIL FROM; if the hop closed it meanwhile, nothing of a message
was sent on it yet, so a fresh connection is used instead (never a lost or a
second copy).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiosmtplib

log = logging.getLogger(__name__)

# Transport failures that mean "try again later", never "refused".
TRANSIENT_ERRORS = (
    aiosmtplib.SMTPConnectError,
    aiosmtplib.SMTPServerDisconnected,
    aiosmtplib.SMTPTimeoutError,
    OSError,
    asyncio.TimeoutError,
)


@dataclass(frozen=True)
class Reply:
    """An SMTP reply: code and text (the text may carry an enhanced status code)."""

    code: int
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300

    @property
    def transient(self) -> bool:
        return 400 <= self.code < 500

    def line(self) -> str:
        """As one reply line for our own client (multi-line texts folded)."""
        return f"{self.code} {' '.join(self.text.split())}"


UNAVAILABLE = Reply(451, "4.4.1 Next hop unavailable, try again later")


@dataclass
class Delivery:
    """What the next hop said to one delivery: per recipient, then to DATA."""

    recipients: dict[str, Reply] = field(default_factory=dict)
    data: Reply = UNAVAILABLE

    @property
    def accepted(self) -> list[str]:
        return [r for r, reply in self.recipients.items() if reply.ok]


class StaleConnection(Exception):
    """A reused connection turned out closed (or closing) before MAIL FROM was answered."""


@dataclass
class _Parked:
    """An idle connection to the hop, ready for its next MAIL FROM."""

    client: aiosmtplib.SMTP
    parked_at: float  # event-loop time


class NextHop:
    """Where mail goes after scanning (Postfix's re-injection port by default).

    ``file:FOLDER`` instead writes each delivered message into a folder: for a
    first look at the gateway without a mail server behind it.

    With ``pool_size`` above 0, up to that many idle connections are kept for
    ``idle_s`` seconds and reused (one event loop only: the running gateway's).
    """

    def __init__(
        self,
        url: str,
        timeout_s: float = 30.0,
        helo: str = "dlp-gateway.localhost",
        pool_size: int = 0,
        idle_s: float = 10.0,
    ):
        parts = urlsplit(url)
        self.folder = Path(url.removeprefix("file:")) if parts.scheme == "file" else None
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 25
        self.use_tls = parts.scheme == "smtps"
        self.timeout_s = timeout_s
        self.helo = helo
        self.pool_size = pool_size
        self.idle_s = idle_s
        self._idle: list[_Parked] = []  # most recently parked last: reused first, while warm
        self._closing: set[asyncio.Task[None]] = set()  # QUITs under way, kept until done
        self._reaper: asyncio.TimerHandle | None = None
        self.connections_opened = 0  # for tests and the benchmark: how often we connected

    @property
    def idle(self) -> int:
        """Connections parked for reuse now."""
        return len(self._idle)

    async def open(self, sender: str, mail_options: list[str]) -> Transaction:
        """Send MAIL FROM on an idle connection, else on a new one; raise HopError if
        the hop is down or refuses."""
        if self.folder is not None:
            return FolderTransaction(self.folder, sender)
        while (client := self._take()) is not None:
            transaction = Transaction(client, self)
            try:
                await transaction.start(sender, mail_options)
            except StaleConnection:
                continue  # closed by the hop while idle: no message was sent on it
            return transaction
        transaction = Transaction(await self._connect(), self)
        await transaction.mail(sender, mail_options)
        return transaction

    async def _connect(self) -> aiosmtplib.SMTP:
        """A new connection, greeted and EHLO'd; HopError if that fails."""
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            timeout=self.timeout_s,
            use_tls=self.use_tls,
            start_tls=False,
            local_hostname=self.helo,
        )
        try:
            await client.connect()
            await client.ehlo()
        except TRANSIENT_ERRORS as exc:
            raise HopError(UNAVAILABLE) from exc
        except aiosmtplib.SMTPResponseException as exc:
            await _quietly_close(client)
            raise HopError(Reply(exc.code, exc.message)) from exc
        self.connections_opened += 1
        return client

    def _take(self) -> aiosmtplib.SMTP | None:
        """The most recently parked live connection; expired or dead ones are dropped."""
        now = asyncio.get_running_loop().time()
        while self._idle:
            parked = self._idle.pop()
            if parked.client.is_connected and now - parked.parked_at < self.idle_s:
                return parked.client
            self._close_later(parked.client)
        return None

    async def release(self, client: aiosmtplib.SMTP, clean: bool) -> None:
        """Park a connection for reuse, or QUIT it.

        ``clean``: no MAIL transaction is open on it.  Otherwise it is RSET first,
        and a hop that does not answer RSET with 2xx gets QUIT rather than reuse.
        """
        if not client.is_connected:
            return
        if self.pool_size <= 0 or len(self._idle) >= self.pool_size:
            await _quietly_close(client)
            return
        if not clean and not await _reset(client):
            await _quietly_close(client)
            return
        loop = asyncio.get_running_loop()
        self._idle.append(_Parked(client, loop.time()))
        if self._reaper is None:
            self._reaper = loop.call_later(self.idle_s, self._reap)

    def _reap(self) -> None:
        """QUIT connections idle for ``idle_s``, so an idle gateway holds none at the hop."""
        self._reaper = None
        loop = asyncio.get_running_loop()
        expired = loop.time() - self.idle_s
        for parked in [p for p in self._idle if p.parked_at <= expired or not p.client.is_connected]:
            self._idle.remove(parked)
            self._close_later(parked.client)
        if self._idle:
            oldest = min(p.parked_at for p in self._idle)
            self._reaper = loop.call_at(oldest + self.idle_s, self._reap)

    def _close_later(self, client: aiosmtplib.SMTP) -> None:
        task = asyncio.get_running_loop().create_task(_quietly_close(client))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        """QUIT every idle connection (at shutdown)."""
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        while self._idle:
            self._close_later(self._idle.pop().client)
        await asyncio.gather(*self._closing, return_exceptions=True)

    async def deliver(
        self,
        sender: str,
        recipients: list[str],
        raw: bytes,
        mail_options: list[str] | None = None,
        rcpt_options: dict[str, list[str]] | None = None,
    ) -> Delivery:
        """One complete delivery; a down or refusing hop is reported, never raised."""
        delivery = Delivery()
        try:
            transaction = await self.open(sender, mail_options or [])
        except HopError as exc:
            delivery.recipients = {r: exc.reply for r in recipients}
            delivery.data = exc.reply
            return delivery
        try:
            for rcpt in recipients:
                delivery.recipients[rcpt] = await transaction.rcpt(rcpt, (rcpt_options or {}).get(rcpt, []))
            if delivery.accepted:
                delivery.data = await transaction.data(raw)
            else:
                delivery.data = Reply(554, "5.5.1 No valid recipients")
        finally:
            await transaction.close()
        return delivery


class HopError(Exception):
    """The next hop could not be used; ``reply`` says what to tell our client."""

    def __init__(self, reply: Reply):
        super().__init__(reply.line())
        self.reply = reply


class Transaction:
    """One MAIL transaction open at the next hop, driven command by command.

    ``close`` hands the connection back to ``hop`` for reuse (or QUITs it);
    ``clean`` tracks whether a MAIL transaction is open on it, so a connection
    is never reused mid-transaction without an RSET.
    """

    def __init__(self, client: aiosmtplib.SMTP, hop: NextHop | None = None):
        self.client = client
        self.hop = hop
        self.encoding = "ascii"  # becomes utf-8 once MAIL FROM carried SMTPUTF8
        self.clean = True
        self.closed = False

    def _supported(self, options: list[str]) -> list[str]:
        """Pass on only the parameters the next hop advertised."""
        wanted = {"BODY": "8bitmime", "SMTPUTF8": "smtputf8", "SIZE": "size"}
        kept = []
        for option in (o.upper() for o in options):
            extension = wanted.get(option.split("=", 1)[0].upper())
            if extension and self.client.supports_extension(extension):
                kept.append(option)
        return kept

    async def start(self, sender: str, options: list[str]) -> None:
        """MAIL FROM on a reused connection: StaleConnection if the hop had closed it
        meanwhile (or answered 421, closing it), so the caller tries a fresh one.  A hop
        that times out is down, not stale: that is the caller's HopError as usual."""
        try:
            await self.mail(sender, options)
        except HopError as exc:
            if self.client.is_connected or isinstance(exc.__cause__, TimeoutError):
                raise
            raise StaleConnection from exc

    async def mail(self, sender: str, options: list[str]) -> None:
        if sender == "<>":
            sender = ""  # the null sender (bounces); aiosmtplib writes it as <>
        supported = self._supported(options)
        self.encoding = "utf-8" if "SMTPUTF8" in supported else "ascii"
        try:
            await self.client.mail(sender, options=supported, encoding=self.encoding)
        except UnicodeEncodeError as exc:
            await self.close()
            raise HopError(Reply(553, "5.6.7 Next hop does not support SMTPUTF8 addresses")) from exc
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == 421:
                self.client.close()  # the hop is closing this connection
            await self.close()
            raise HopError(Reply(exc.code, exc.message)) from exc
        except TRANSIENT_ERRORS as exc:
            self.client.close()  # whatever state it is in, it is not reusable
            await self.close()
            raise HopError(UNAVAILABLE) from exc
        self.clean = False

    async def rcpt(self, recipient: str, options: list[str]) -> Reply:
        """Send RCPT TO; the hop's reply, or 451 if the connection failed."""
        if self.closed:
            return UNAVAILABLE  # the connection went back to the pool: never write on it
        try:
            response = await self.client.rcpt(
                recipient, options=self._supported(options), encoding=self.encoding
            )
        except UnicodeEncodeError:
            return Reply(553, "5.6.7 Next hop does not support SMTPUTF8 addresses")
        except aiosmtplib.SMTPResponseException as exc:
            return Reply(exc.code, exc.message)
        except TRANSIENT_ERRORS:
            self.client.close()  # broken or hung: not reusable, and no RSET to wait for
            return UNAVAILABLE
        return Reply(response.code, response.message)

    async def data(self, raw: bytes) -> Reply:
        """Send the message; the hop's reply, or 451 if the connection failed."""
        if self.closed:
            return UNAVAILABLE  # the connection went back to the pool: never write on it
        try:
            response = await self.client.data(raw)
        except aiosmtplib.SMTPResponseException as exc:
            # Refused at DATA or at the end of data: ``clean`` stays False, so the
            # connection is RSET before any reuse (a DATA refusal may leave the envelope).
            return Reply(exc.code, exc.message)
        except TRANSIENT_ERRORS:
            self.client.close()  # the hop may or may not have the message: never reuse this one
            return UNAVAILABLE
        self.clean = True
        return Reply(response.code, response.message)

    async def reset(self, sender: str, options: list[str]) -> None:
        """Start over with a new MAIL FROM (used when only some recipients may receive)."""
        if self.closed:
            raise HopError(UNAVAILABLE)  # the connection went back to the pool: never write on it
        self.clean = False  # until MAIL is refused or DATA answered, assume a transaction is open
        try:
            await self.client.rset()
        except (aiosmtplib.SMTPResponseException, *TRANSIENT_ERRORS) as exc:
            self.client.close()  # an hop that refuses RSET is not reused either
            raise HopError(UNAVAILABLE) from exc
        self.clean = True
        await self.mail(sender, options)

    async def close(self) -> None:
        """Done with this transaction: the connection goes back to the pool or is QUIT."""
        if self.closed:
            return
        self.closed = True
        if self.hop is None:
            await _quietly_close(self.client)
        else:
            await self.hop.release(self.client, self.clean)


class FolderTransaction(Transaction):
    """A "transaction" that accepts every recipient and writes the message to a folder."""

    def __init__(self, folder: Path, sender: str):
        self.folder = folder
        self.sender = sender
        self.recipients: list[str] = []
        self.clean = True
        self.closed = False

    async def mail(self, sender: str, options: list[str]) -> None:
        self.sender = sender
        self.recipients = []

    async def rcpt(self, recipient: str, options: list[str]) -> Reply:
        self.recipients.append(recipient)
        return Reply(250, "2.1.5 Ok")

    async def data(self, raw: bytes) -> Reply:
        try:
            name = await asyncio.to_thread(_write_atomically, self.folder, self.sender, self.recipients, raw)
        except OSError as exc:
            log.error("cannot write to delivery folder %s: %s", self.folder, exc.strerror)
            return Reply(451, "4.3.0 Delivery folder not writable")
        return Reply(250, f"2.0.0 Ok: written as {name}")

    async def reset(self, sender: str, options: list[str]) -> None:
        await self.mail(sender, options)

    async def close(self) -> None:
        return None


def _write_atomically(folder: Path, sender: str, recipients: list[str], raw: bytes) -> str:
    """Write envelope headers + message to a new file; fsync before it becomes visible."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns()}-{secrets.token_hex(4)}.eml"
    envelope = f"X-Envelope-From: <{sender}>\r\n" + "".join(f"X-Envelope-To: <{r}>\r\n" for r in recipients)
    tmp = folder / f".{name}.tmp"
    with tmp.open("wb") as handle:
        handle.write(envelope.encode("utf-8") + raw)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.rename(folder / name)
    return name


async def _reset(client: aiosmtplib.SMTP) -> bool:
    """RSET an open transaction away; False if the hop did not say 2xx (or went away)."""
    try:
        response = await client.rset()
    except (aiosmtplib.SMTPResponseException, *TRANSIENT_ERRORS):
        return False
    return 200 <= response.code < 300


async def _quietly_close(client: aiosmtplib.SMTP) -> None:
    if not client.is_connected:
        return
    try:
        await client.quit()
    except Exception:  # the hop went away; nothing left to tell it
        client.close()
