"""The next hop: an SMTP client that relays with the original envelope and reports
every reply, so the gateway can mirror the next hop's answers to its own client."""

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


class NextHop:
    """Where mail goes after scanning (Postfix's re-injection port by default).

    ``file:FOLDER`` instead writes each delivered message into a folder: for a
    first look at the gateway without a mail server behind it.
    """

    def __init__(self, url: str, timeout_s: float = 30.0, helo: str = "dlp-gateway.localhost"):
        parts = urlsplit(url)
        self.folder = Path(url.removeprefix("file:")) if parts.scheme == "file" else None
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 25
        self.use_tls = parts.scheme == "smtps"
        self.timeout_s = timeout_s
        self.helo = helo

    async def open(self, sender: str, mail_options: list[str]) -> Transaction:
        """Connect and send MAIL FROM; raise HopError if the hop is down or refuses."""
        if self.folder is not None:
            return FolderTransaction(self.folder, sender)
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
        transaction = Transaction(client)
        await transaction.mail(sender, mail_options)
        return transaction

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
    """One MAIL transaction open at the next hop, driven command by command."""

    def __init__(self, client: aiosmtplib.SMTP):
        self.client = client
        self.encoding = "ascii"  # becomes utf-8 once MAIL FROM carried SMTPUTF8

    def _supported(self, options: list[str]) -> list[str]:
        """Pass on only the parameters the next hop advertised."""
        wanted = {"BODY": "8bitmime", "SMTPUTF8": "smtputf8", "SIZE": "size"}
        kept = []
        for option in (o.upper() for o in options):
            extension = wanted.get(option.split("=", 1)[0].upper())
            if extension and self.client.supports_extension(extension):
                kept.append(option)
        return kept

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
            await self.close()
            raise HopError(Reply(exc.code, exc.message)) from exc
        except TRANSIENT_ERRORS as exc:
            await self.close()
            raise HopError(UNAVAILABLE) from exc

    async def rcpt(self, recipient: str, options: list[str]) -> Reply:
        """Send RCPT TO; the hop's reply, or 451 if the connection failed."""
        try:
            response = await self.client.rcpt(
                recipient, options=self._supported(options), encoding=self.encoding
            )
        except UnicodeEncodeError:
            return Reply(553, "5.6.7 Next hop does not support SMTPUTF8 addresses")
        except aiosmtplib.SMTPResponseException as exc:
            return Reply(exc.code, exc.message)
        except TRANSIENT_ERRORS:
            return UNAVAILABLE
        return Reply(response.code, response.message)

    async def data(self, raw: bytes) -> Reply:
        """Send the message; the hop's reply, or 451 if the connection failed."""
        try:
            response = await self.client.data(raw)
        except aiosmtplib.SMTPResponseException as exc:
            return Reply(exc.code, exc.message)
        except TRANSIENT_ERRORS:
            return UNAVAILABLE
        return Reply(response.code, response.message)

    async def reset(self, sender: str, options: list[str]) -> None:
        """Start over with a new MAIL FROM (used when only some recipients may receive)."""
        try:
            await self.client.rset()
        except (aiosmtplib.SMTPResponseException, *TRANSIENT_ERRORS) as exc:
            raise HopError(UNAVAILABLE) from exc
        await self.mail(sender, options)

    async def close(self) -> None:
        await _quietly_close(self.client)


class FolderTransaction(Transaction):
    """A "transaction" that accepts every recipient and writes the message to a folder."""

    def __init__(self, folder: Path, sender: str):
        self.folder = folder
        self.sender = sender
        self.recipients: list[str] = []

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


async def _quietly_close(client: aiosmtplib.SMTP) -> None:
    if not client.is_connected:
        return
    try:
        await client.quit()
    except Exception:  # the hop went away; nothing left to tell it
        client.close()
