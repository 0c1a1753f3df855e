"""Expiry (discard or hold), the per-sender notice limit, and the whole flow on PostgreSQL."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.confirm.conftest import TFN, Stack, ident_in, mail, text_of, token_in, until
from tests.confirm.databases import fresh_database

FLOOD = 50
LIMIT = 3


@pytest.fixture(scope="module")
def discarding(make_stack: Callable[..., Stack]) -> Stack:
    return make_stack(token_lifetime_s=3, notices_per_sender_per_hour=LIMIT)


@pytest.fixture(scope="module")
def holding(make_stack: Callable[..., Stack]) -> Stack:
    return make_stack(token_lifetime_s=3, expiry_action="hold")


@pytest.fixture(scope="module")
def on_postgresql(make_stack: Callable[..., Stack]) -> Iterator[Stack]:
    with fresh_database() as url:
        stack = make_stack(store_url=url)
        yield stack
        stack.gateway.stop()  # before the database is dropped


def send_warned(stack: Stack, subject: str, sender: str) -> str:
    code, reply = stack.send(mail(subject, f"Client tax file number {TFN} for the refund.", sender), sender)
    assert code == 250
    return ident_in(reply)


def test_an_unconfirmed_message_is_discarded_with_a_final_notice(discarding: Stack) -> None:
    ident = send_warned(discarding, "Expiring refund", "erin@agency.gov.au")
    token = token_in(discarding.notice_about(ident))
    until(lambda: discarding.message(ident).status == "expired", 20)
    final = discarding.notice_about(ident, "Not sent")
    assert "discarded" in text_of(final) and final["Auto-Submitted"] == "auto-replied"
    with httpx.Client(timeout=30) as http:
        page = http.get(f"{discarding.web}/confirm/{token}")
    assert page.status_code == 410 and "expired" in page.text
    time.sleep(1)
    assert discarding.delivered_to("bob@example.com") == []


def test_a_flood_of_warnings_gets_at_most_the_configured_number_of_notices(discarding: Stack) -> None:
    sender = "flood@agency.gov.au"
    started = time.monotonic()
    idents = []
    with smtplib.SMTP("127.0.0.1", discarding.gateway.port, timeout=60) as client:
        for i in range(FLOOD):
            raw = mail(f"flood {i}", f"Client tax file number {TFN} for the refund.", sender)
            client.ehlo()
            client.mail(sender)
            client.rcpt("bob@example.com")
            code, text = client.data(raw)
            assert code == 250
            idents.append(ident_in(text.decode()))
    assert time.monotonic() - started < 60  # fifty warnings within a minute
    time.sleep(3)  # let the outbox deliver whatever was queued
    notices = discarding.notices(sender)
    assert len(notices) == LIMIT
    statuses = [discarding.message(i).status for i in idents]
    assert statuses.count("held") == FLOOD - LIMIT  # beyond the limit: security staff decide
    assert discarding.delivered_to("bob@example.com") == []


def test_expiry_can_hand_the_message_to_security_staff(holding: Stack) -> None:
    ident = send_warned(holding, "Held on expiry", "frank@agency.gov.au")
    holding.notice_about(ident, "Not sent yet")
    until(lambda: holding.message(ident).status == "held", 20)
    assert "passed to security staff" in text_of(holding.notice_about(ident, "Not sent:"))
    assert holding.delivered_to("bob@example.com") == []


def test_confirming_by_reply_on_postgresql(on_postgresql: Stack) -> None:
    stack = on_postgresql
    ident = send_warned(stack, "Refund on PostgreSQL", "alice@agency.gov.au")
    token = token_in(stack.notice_about(ident))
    raw = (
        f"From: alice@agency.gov.au\r\nTo: dlp-confirm+{token}@agency.gov.au\r\nSubject: Re: refund\r\n\r\n"
        "Send\r\nThe client's accountant needs it today.\r\n"
    ).encode()
    code, text = stack.send(raw, "alice@agency.gov.au", (f"dlp-confirm+{token}@agency.gov.au",))
    assert code == 250 and "Confirmation reply received" in text
    until(lambda: stack.message(ident).status == "released")
    assert len(stack.delivered_to("bob@example.com")) == 1
    store = stack.store()
    assert store.verify_audit() == []
    store.close()
