"""Sender → domain history behind `recipient: new_domain`, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import smtplib
from collections.abc import Callable
from pathlib import Path

from gateway.history import SenderHistory
from gateway.store import Store
from tests.support import GatewayProcess, Sink, message


def test_history_records_and_answers(store_url: str) -> None:
    store = Store(store_url)
    store.migrate()
    history = SenderHistory(store)
    assert history.known("alice@agency.gov.au", {"example.com"}) == frozenset()
    history.record("Alice@agency.gov.au", ["bob@Example.com", "carol@partner.gov.au"])
    history.record("alice@agency.gov.au", ["dave@example.com"])
    assert history.known("alice@agency.gov.au", {"example.com", "new.org"}) == {"example.com"}
    assert history.known("zed@agency.gov.au", {"example.com"}) == frozenset()


def _data_reply(port: int, raw: bytes, rcpt: str) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        client.ehlo()
        client.mail("alice@agency.gov.au")
        client.rcpt(rcpt)
        return client.data(raw)


def test_first_message_to_a_domain_is_new_until_mail_was_delivered_there(
    tmp_path: Path, sink: Sink, make_gateway: Callable[..., GatewayProcess]
) -> None:
    policy = tmp_path / "new-domain.yaml"
    policy.write_text(
        "rules:\n"
        "  - name: first-contact\n"
        "    description: First message from this sender to this domain.\n"
        "    when: {recipient: new_domain}\n"
        "    action: hold\n"
    )
    gateway = make_gateway(sink.port, policy=str(policy))
    code, text = _data_reply(gateway.port, message("hello", "Nice to meet you."), "bob@example.com")
    assert code == 250 and b"Held for review" in text
    ident = json.loads(gateway.cli("held", "list", "--json").stdout.splitlines()[0])["id"]
    assert gateway.cli("held", "release", ident).returncode == 0
    code, text = _data_reply(gateway.port, message("again", "Following up."), "dave@example.com")
    assert code == 250 and b"Held" not in text
    code, text = _data_reply(gateway.port, message("hi", "Hello."), "erin@elsewhere.org")
    assert b"Held for review" in text
    code, text = _data_reply(gateway.port, message("memo", "Internal memo."), "carol@agency.gov.au")
    assert b"Held" not in text  # internal domains are never "new"
    assert [m.recipients for m in sink.messages] == [
        ["bob@example.com"],
        ["dave@example.com"],
        ["carol@agency.gov.au"],
    ]
