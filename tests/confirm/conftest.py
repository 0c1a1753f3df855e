"""A gateway process with warn-and-confirm switched on, its web service, and a sink as next hop.

Started once per test module (a gateway takes seconds to start); tests tell
their messages apart by unique subjects and senders.
"""

from __future__ import annotations

import email
import email.policy
import re
import smtplib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from gateway.store import Store, StoredMessage
from tests.support import GatewayProcess, Received, Sink, free_port, wait_for_port, write_settings

GATEWAY = "dlp-gateway@agency.gov.au"
TFN = "123 456 782"  # synthetic, valid checksum
TFN_MASKED = "••• ••• 782"

WARN_POLICY = """\
version: 1
rules:
  - name: tfn-external-warn
    description: A tax file number is being sent outside the agency.
    guidance: >-
      Tax file numbers may only be disclosed for a purpose the law allows.
      Treat this message as OFFICIAL: Sensitive.
    when:
      all:
        - recipient: external
        - findings: {entities: [AU_TFN], min_score: 0.6}
    action: warn
  - name: marking-external-warn
    description: A protectively marked message is being sent outside the agency.
    guidance: Is the recipient authorised to receive it?
    when:
      all:
        - recipient: external
        - findings: {entities: [PROTECTIVE_MARKING], min_score: 0.5}
    action: warn
  - name: card-notify
    description: A payment card number is being sent.
    guidance: Card numbers should not travel by email; please take care.
    when:
      findings: {entities: [CREDIT_CARD], min_score: 0.6}
    action: notify
"""


@dataclass
class Stack:
    """Sink ← gateway (SMTP + web) with its store, as a user and a sender see them."""

    sink: Sink
    gateway: GatewayProcess
    web: str
    store_url: str

    def store(self) -> Store:
        return Store(self.store_url)

    def message(self, ident: str) -> StoredMessage:
        store = self.store()
        try:
            found = store.get(ident)
        finally:
            store.close()
        assert found is not None, ident
        return found

    def send(
        self, raw: bytes, sender: str = "alice@agency.gov.au", rcpts: tuple[str, ...] = ("bob@example.com",)
    ) -> tuple[int, str]:
        with smtplib.SMTP("127.0.0.1", self.gateway.port, timeout=60) as client:
            client.ehlo()
            code, _ = client.mail(sender)
            assert code == 250
            for rcpt in rcpts:
                assert client.rcpt(rcpt)[0] == 250
            code, text = client.data(raw)
        return code, text.decode()

    def notices(self, to: str | None = None) -> list[EmailMessage]:
        found = [parse(m.data) for m in self.sink.messages if m.sender == GATEWAY]
        return [n for n in found if to is None or n["To"] == to]

    def notice_about(self, ident: str, kind: str = "", timeout: float = 20.0) -> EmailMessage:
        """The notice referring to message ``ident`` (waits for it)."""
        found: list[EmailMessage] = []

        def seen() -> bool:
            mine = (n for n in self.notices() if f"Reference: {ident}" in text_of(n))
            found[:] = [n for n in mine if kind in n["Subject"]]
            return bool(found)

        until(seen, timeout)
        return found[0]

    def delivered_to(self, rcpt: str) -> list[Received]:
        return [m for m in self.sink.messages if m.sender != GATEWAY and rcpt in m.recipients]


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def text_of(msg: EmailMessage, subtype: str = "plain") -> str:
    part = msg.get_body(preferencelist=(subtype,))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


def token_in(notice: EmailMessage) -> str:
    match = re.search(r"/confirm/([a-z2-7]+)", text_of(notice))
    assert match, "no confirmation link in the notice"
    return match[1]


def ident_in(reply: str) -> str:
    match = re.search(r"\[([0-9a-f]{16})\]", reply)
    assert match, reply
    return match[1]


def until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def mail(
    subject: str, body: str, sender: str = "alice@agency.gov.au", headers: tuple[str, ...] = ()
) -> bytes:
    """A message from ``sender`` to bob@example.com; a ``Reply-To:`` in ``headers`` becomes its From."""
    from_header = next((h.split(":", 1)[1].strip() for h in headers if h.startswith("Reply-To:")), sender)
    lines = [
        f"From: {from_header}",
        "To: bob@example.com",
        f"Subject: {subject}",
        f"Message-ID: <{abs(hash((subject, body)))}.{time.monotonic_ns()}@agency.gov.au>",
        *headers,
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "",
        body,
        "",
    ]
    return "\r\n".join(lines).encode()


@pytest.fixture(scope="module")
def make_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Stack]]:
    started: list[tuple[Sink, GatewayProcess]] = []

    def make(store_url: str | None = None, **confirm: Any) -> Stack:
        workdir = tmp_path_factory.mktemp("confirm")
        policy = workdir / "warn.yaml"
        policy.write_text(WARN_POLICY)
        sink = Sink().start()
        web_port = free_port()
        url = store_url or f"sqlite:///{workdir / 'var' / 'store.sqlite3'}"
        config, port = write_settings(
            workdir,
            sink.port,
            policy=str(policy),
            store_url=url,
            gateway_address=GATEWAY,
            console={
                "enabled": True,
                "listen": f"127.0.0.1:{web_port}",
                "public_url": f"http://127.0.0.1:{web_port}",
                "cookie_secure": False,
            },
            confirm={"notices_per_sender_per_hour": 1000, "expiry_interval_s": 0.5, **confirm},
            outbox={"poll_interval_s": 0.2, "retry_base_s": 1.0},
        )
        gateway = GatewayProcess(config, port, Path(workdir))
        started.append((sink, gateway))
        gateway.start()
        wait_for_port(web_port, 30, gateway.proc)
        return Stack(sink, gateway, f"http://127.0.0.1:{web_port}", url)

    yield make
    for sink, gateway in started:
        gateway.stop()
        sink.stop()
