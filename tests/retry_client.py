"""A small client that behaves like an upstream MTA: it retries each message until the
gateway gives a final answer (2xx or 5xx), as Postfix would keep a deferred message queued.

Used by the crash-safety tests and by bench/soak.py.  Every loop is bounded in
attempts and in time.
"""

from __future__ import annotations

import smtplib
import threading
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field


@dataclass
class Mail:
    """One message to send: its Message-ID (without brackets) and bytes."""

    message_id: str
    sender: str
    recipients: tuple[str, ...]
    raw: bytes


@dataclass
class Result:
    """What the client finally got for one message, and what it went through to get it."""

    message_id: str
    code: int  # final: 2xx or 5xx; 0 if the client gave up (deadline or attempts)
    reply: str
    attempts: int
    transient: list[int] = field(default_factory=list)  # 4xx codes seen, -1 for a connection failure


def try_once(port: int, mail: Mail, timeout: float = 60.0) -> tuple[int, str]:
    """One SMTP transaction; (code, text).  A connection failure is (-1, why)."""
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=timeout) as client:
            code, text = client.ehlo()
            if code != 250:
                return code, text.decode(errors="replace")
            code, text = client.mail(mail.sender)
            if code != 250:
                return code, text.decode(errors="replace")
            accepted = 0
            last = (0, b"")
            for rcpt in mail.recipients:
                code, text = client.rcpt(rcpt)
                accepted += code == 250
                last = (code, text)
            if not accepted:
                return last[0], last[1].decode(errors="replace")
            code, text = client.data(mail.raw)
            return code, text.decode(errors="replace")
    except (OSError, smtplib.SMTPException) as exc:
        code = getattr(exc, "smtp_code", -1)
        return (code if isinstance(code, int) and code >= 400 else -1), type(exc).__name__


def deliver(port: int, mail: Mail, deadline: float, max_attempts: int = 200, pause: float = 0.2) -> Result:
    """Retry ``mail`` until a 2xx or 5xx, ``max_attempts`` or ``deadline`` (time.monotonic())."""
    result = Result(mail.message_id, 0, "", 0)
    while result.attempts < max_attempts and time.monotonic() < deadline:
        result.attempts += 1
        code, text = try_once(port, mail)
        if 200 <= code < 300 or 500 <= code < 600:
            result.code, result.reply = code, text
            return result
        result.transient.append(code)
        result.reply = text
        time.sleep(pause)
    return result


@dataclass
class Burst:
    """Messages sent by ``concurrency`` threads, each retried like an MTA would."""

    port: int
    concurrency: int = 4
    timeout_s: float = 150.0
    results: list[Result] = field(default_factory=list)
    done: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, mails: Iterable[Mail]) -> list[Result]:
        """Send them all (blocking); the results come back in any order."""
        deadline = time.monotonic() + self.timeout_s

        def one(mail: Mail) -> None:
            result = deliver(self.port, mail, deadline)
            with self._lock:
                self.results.append(result)
                self.done += 1

        with ThreadPoolExecutor(self.concurrency) as pool:
            list(pool.map(one, mails))
        return self.results

    def start(self, mails: Iterable[Mail]) -> threading.Thread:
        """Send them in the background; join the thread to wait."""
        thread = threading.Thread(target=self.run, args=(list(mails),), daemon=True)
        thread.start()
        return thread

    def codes(self) -> Counter[int]:
        with self._lock:
            return Counter(r.code for r in self.results)


def make_mail(
    index: int, body: str, tag: str = "burst", rcpts: tuple[str, ...] = ("bob@example.com",)
) -> Mail:
    """A small message with a unique, recognisable Message-ID."""
    message_id = f"{tag}-{index:05d}@test.agency.gov.au"
    lines = [
        "From: alice@agency.gov.au",
        f"To: {', '.join(rcpts)}",
        f"Subject: {tag} {index}",
        f"Message-ID: <{message_id}>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "",
        body,
        "",
    ]
    return Mail(message_id, "alice@agency.gov.au", rcpts, "\r\n".join(lines).encode())


def message_id_of(data: bytes) -> str:
    """The Message-ID (without brackets) of a delivered message's bytes."""
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().strip(b"<>").decode()
    return ""


def decision_id_of(data: bytes) -> str:
    """The gateway's id from the X-DLP-Decision header of a delivered message."""
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"x-dlp-decision:"):
            return line.rsplit(b"id=", 1)[-1].strip().decode()
    return ""
