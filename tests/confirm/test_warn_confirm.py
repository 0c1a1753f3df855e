"""Warn and confirm end to end: smtplib → `dlp-gateway run` → aiosmtpd sink, with the sender's
side played over real SMTP (replies) and a real HTTP client (the confirmation page)."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable

import httpx
import pytest

from tests.confirm.conftest import (
    GATEWAY,
    TFN,
    TFN_MASKED,
    Stack,
    ident_in,
    mail,
    text_of,
    token_in,
    until,
)


@pytest.fixture(scope="module")
def stack(make_stack: Callable[..., Stack]) -> Stack:
    return make_stack()


def warned(stack: Stack, subject: str, sender: str = "alice@agency.gov.au") -> str:
    """Send a message the policy warns about; return its id once its notice is at the sink."""
    code, reply = stack.send(mail(subject, f"Client tax file number {TFN} for the refund.", sender), sender)
    assert code == 250 and "Awaiting the sender's confirmation" in reply
    return ident_in(reply)


def reply_to_notice(stack: Stack, token: str, body: str, sender: str = "alice@agency.gov.au") -> str:
    raw = (
        f"From: {sender}\r\nTo: dlp-confirm+{token}@agency.gov.au\r\nSubject: Re: your message\r\n"
        f"Message-ID: <{secrets.token_hex(8)}@agency.gov.au>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body}\r\n"
    ).encode()
    code, text = stack.send(raw, sender, (f"dlp-confirm+{token}@agency.gov.au",))
    assert code == 250
    return text


def form_of(page: str) -> dict[str, str]:
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert csrf, "no form token on the page"
    return {"csrf": csrf[1]}


def test_a_warned_message_waits_and_its_sender_gets_a_masked_notice(stack: Stack) -> None:
    ident = warned(stack, "Refund for client 1")
    notice = stack.notice_about(ident)
    assert stack.delivered_to("bob@example.com") == []
    assert stack.message(ident).status == "pending"
    raw = next(m.data for m in stack.sink.messages if m.sender == GATEWAY)
    assert TFN.encode() not in raw and b"123456782" not in raw
    plain, html = text_of(notice), text_of(notice, "html")
    for body in (plain, html):
        assert TFN not in body and TFN_MASKED in body
        assert "Tax file numbers may only be disclosed" in body  # the rule's guidance
        assert "bob@example.com" in body
        assert f"{stack.web}/confirm/" in body
    assert notice["To"] == "alice@agency.gov.au" and GATEWAY in notice["From"]
    assert notice["Auto-Submitted"] == "auto-replied"
    assert re.fullmatch(r"dlp-confirm\+[a-z2-7]{32}@agency\.gov\.au", str(notice["Reply-To"]))
    assert "Refund for client 1" in notice["Subject"]
    parts = [p.get_content_type() for p in notice.iter_parts()]
    assert parts == ["text/plain", "text/html"]  # alternatives only: the original is not attached
    assert "AU_TFN" in plain and "body" in plain
    assert TFN not in stack.gateway.log()


def test_confirming_by_link_delivers_the_original_once_with_the_justification_audited(stack: Stack) -> None:
    subject = "Refund for client 2"
    ident = warned(stack, subject)
    token = token_in(stack.notice_about(ident))
    url = f"{stack.web}/confirm/{token}"
    justification = "The client asked for their own TFN to be sent to their accountant."
    with httpx.Client(timeout=30) as http:
        page = http.get(url)
        assert page.status_code == 200 and "Send anyway" in page.text and TFN_MASKED in page.text
        assert TFN not in page.text and page.headers["cache-control"] == "no-store"
        form = form_of(page.text)
        forged = http.post(url, data={"csrf": "0" * 64, "action": "send", "justification": justification})
        assert forged.status_code == 403
        short = http.post(url, data={**form, "action": "send", "justification": "ok"})
        assert short.status_code == 400 and "justification" in short.text
        assert stack.message(ident).status == "pending"  # neither changed anything
        sent = http.post(url, data={**form, "action": "send", "justification": justification})
        assert sent.status_code == 200 and "being sent" in sent.text
        until(lambda: len(stack.delivered_to("bob@example.com")) == 1)
        again = http.post(url, data={**form, "action": "send", "justification": justification})
        assert again.status_code == 409
        assert http.get(url).status_code == 409
    time.sleep(1.5)  # several outbox polls: still exactly one delivery
    [delivered] = stack.delivered_to("bob@example.com")
    assert delivered.data.startswith(
        f"X-DLP-Decision: confirmed; id={ident}\r\nFrom: alice@agency.gov.au\r\n".encode()
    )
    assert delivered.data.endswith(
        f"Client tax file number {TFN} for the refund.\r\n".encode()
    )  # the original
    assert justification.encode() not in delivered.data
    until(lambda: stack.message(ident).status == "released")
    store = stack.store()
    trail = store.audit_trail(ident)
    assert store.verify_audit() == []
    store.close()
    confirmed = [e for e in trail if e.action == "confirmed"]
    assert len(confirmed) == 1 and confirmed[0].actor == "alice@agency.gov.au"
    assert confirmed[0].detail["justification"] == justification and confirmed[0].detail["via"] == "link"
    assert [e.action for e in trail][-1] == "released"


def test_confirming_by_reply_delivers_once_and_the_reply_is_not_relayed(stack: Stack) -> None:
    ident = warned(stack, "Refund for client 3")
    token = token_in(stack.notice_about(ident))
    body = "SEND\r\nApproved by the delegate, ref 42.\r\n\r\n> Your message ..."
    answer = reply_to_notice(stack, token, body)
    assert "Confirmation reply received" in answer
    until(lambda: len(stack.delivered_to("bob@example.com")) >= 1)
    until(lambda: stack.message(ident).status == "released")
    assert len([m for m in stack.delivered_to("bob@example.com") if ident.encode() in m.data[:80]]) == 1
    assert not [m for m in stack.sink.messages if any("dlp-confirm" in r for r in m.recipients)]
    store = stack.store()
    [confirmed] = [e for e in store.audit_trail(ident) if e.action == "confirmed"]
    store.close()
    assert confirmed.detail == {
        "via": "reply",
        "justification": "Approved by the delegate, ref 42.",
        "recipients": ["bob@example.com"],
    }
    stack.notice_about(ident, "being sent")  # the sender is told it went
    reply_to_notice(stack, token, "SEND\r\nAnd again.")  # a reused token
    stack.notice_about(ident, "already been dealt with")
    time.sleep(1)
    assert len([m for m in stack.delivered_to("bob@example.com") if ident.encode() in m.data[:80]]) == 1


def test_cancel_by_reply_or_by_link_delivers_nothing(stack: Stack) -> None:
    by_reply = warned(stack, "Refund for client 4")
    by_link = warned(stack, "Refund for client 5")
    reply_to_notice(stack, token_in(stack.notice_about(by_reply)), "cancel\r\n")
    url = f"{stack.web}/confirm/{token_in(stack.notice_about(by_link))}"
    with httpx.Client(timeout=30) as http:
        form = form_of(http.get(url).text)
        assert http.post(url, data={**form, "action": "cancel"}).status_code == 200
    until(lambda: stack.message(by_reply).status == "cancelled")
    assert stack.message(by_link).status == "cancelled"
    time.sleep(1.5)
    for ident in (by_reply, by_link):
        assert not [m for m in stack.sink.messages if ident.encode() in m.data[:80] and m.sender != GATEWAY]


def test_forged_tokens_and_other_senders_change_nothing(stack: Stack) -> None:
    ident = warned(stack, "Refund for client 6")
    token = token_in(stack.notice_about(ident))
    forged = "a" * 32
    with httpx.Client(timeout=30) as http:
        assert http.get(f"{stack.web}/confirm/{forged}").status_code == 404
        attempt = {"csrf": "x", "action": "send", "justification": "x" * 20}
        posted = http.post(f"{stack.web}/confirm/{forged}", data=attempt)
        assert posted.status_code == 404 and "not valid" in posted.text
    reply_to_notice(stack, forged, "SEND\r\nPlease send it, it is fine.")
    reply_to_notice(stack, token, "SEND\r\nI am not the sender but send it.", sender="mallory@agency.gov.au")
    until(lambda: len(stack.notices("mallory@agency.gov.au")) == 1)
    assert "Only the person who sent the message" in text_of(stack.notices("mallory@agency.gov.au")[0])
    time.sleep(1)
    assert stack.message(ident).status == "pending"
    assert not [m for m in stack.sink.messages if ident.encode() in m.data[:80] and m.sender != GATEWAY]


@pytest.mark.parametrize(
    ("subject", "sender", "headers", "reason"),
    [
        (
            "auto 1",
            "alice@agency.gov.au",
            ("Auto-Submitted: auto-generated",),
            "Auto-Submitted: auto-generated",
        ),
        ("auto 2", "alice@agency.gov.au", ("Precedence: bulk",), "Precedence: bulk"),
        ("auto 3", "alice@agency.gov.au", ("List-Id: <staff.agency.gov.au>",), "List-Id"),
        ("auto 4", "eve@example.org", (), "not in an internal domain"),
        ("auto 5", "alice@agency.gov.au", ("Reply-To: x@example.org",), "From header"),
    ],
)
def test_no_notice_to_automatic_null_or_external_senders(
    stack: Stack, subject: str, sender: str, headers: tuple[str, ...], reason: str
) -> None:
    raw = mail(subject, f"Client tax file number {TFN} for the refund.", sender, headers)
    code, reply = stack.send(raw, sender)
    assert code == 250 and "Held for review" in reply  # nobody to ask: security staff decide
    ident = ident_in(reply)
    time.sleep(1.5)
    assert not [n for n in stack.notices() if f"Reference: {ident}" in text_of(n)]
    assert stack.message(ident).status == "held"
    store = stack.store()
    [withheld] = [e for e in store.audit_trail(ident) if e.action == "notice-withheld"]
    store.close()
    assert reason in withheld.detail["reason"]


def test_our_own_notice_passing_back_is_not_scanned_into_another_notice(stack: Stack) -> None:
    ident = warned(stack, "Refund for client 7")
    stack.notice_about(ident)
    notice = next(m.data for m in stack.sink.messages if m.sender == GATEWAY and ident.encode() in m.data)
    # The notice quotes the rule's guidance, "OFFICIAL: Sensitive": scanned, it would be warned about.
    code, reply = stack.send(notice, GATEWAY, ("bob@example.com",))
    assert code == 250 and "Awaiting" not in reply
    passed = ident_in(reply)
    [relayed] = [m for m in stack.sink.messages if passed.encode() in m.data[:80]]
    assert relayed.data.startswith(b"X-DLP-Decision: pass;")
    tampered = notice.replace(b"Hello,", f"Hello, TFN {TFN}".encode(), 1)
    code, reply = stack.send(tampered, GATEWAY, ("bob@example.com",))
    assert code == 250 and "Awaiting" not in reply  # scanned; the gateway's own address gets no notice
    records = [json.loads(line) for line in stack.gateway.log().splitlines() if line.startswith("{")]
    by_id = {r["id"]: r for r in records if "id" in r and "rules" in r}
    assert by_id[passed]["rules"] == ["gateway-notice"]
    assert "tfn-external-warn" in by_id[ident_in(reply)]["rules"]


def test_notify_delivers_now_and_asks_the_sender_to_take_care(stack: Stack) -> None:
    code, reply = stack.send(mail("Card for the booking", "Card 4111 1111 1111 1111 for the booking."))
    assert code == 250
    ident = ident_in(reply)
    [delivered] = [m for m in stack.delivered_to("bob@example.com") if ident.encode() in m.data[:80]]
    assert delivered.data.startswith(b"X-DLP-Decision: notify;")
    notice = stack.notice_about(ident)
    assert "take care" in notice["Subject"]
    assert "4111 1111 1111 1111" not in text_of(notice) and "•••• •••• •••• •111" in text_of(notice)
    assert notice["Auto-Submitted"] == "auto-replied"
