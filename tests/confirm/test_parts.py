"""The parts of warn-and-confirm that need no gateway: who may get a notice, the per-sender
budget (on a real store), reply parsing, subject masking, notice signatures and templates."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.confirm.guard import NoticeBudget, NoticeGuard, headers_of
from gateway.confirm.notices import NoticeWriter, Templates
from gateway.confirm.replies import parse_reply, reply_address, token_of
from gateway.confirm.summary import WITHHELD_SUBJECT, Summary, safe_subject
from gateway.confirm.tokens import NOTICE_HEADER, is_own_notice, new_token, token_hash
from gateway.model import Finding
from gateway.settings import SettingsError, load_settings
from gateway.store import Store

GUARD = NoticeGuard(("agency.gov.au",), "dlp-gateway@agency.gov.au")


def head(*lines: str, sender: str = "alice@agency.gov.au") -> bytes:
    return "\r\n".join([f"From: {sender}", *lines, "", "body"]).encode()


@pytest.mark.parametrize(
    ("sender", "raw", "refused"),
    [
        ("alice@agency.gov.au", head(), None),
        ("alice@unit.agency.gov.au", head(sender="alice@unit.agency.gov.au"), None),
        ("alice@agency.gov.au", head("Auto-Submitted: no"), None),
        ("", head(), "null sender"),
        ("<>", head(), "null sender"),
        ("eve@example.org", head(sender="eve@example.org"), "not in an internal domain"),
        ("alice@agency.gov.au.evil.example", head(), "not in an internal domain"),
        ("alice@agency.gov.au", head(sender="boss@example.org"), "From header"),
        ("mailer-daemon@agency.gov.au", head(sender="mailer-daemon@agency.gov.au"), "robot"),
        ("dlp-gateway@agency.gov.au", head(sender="dlp-gateway@agency.gov.au"), "robot"),
        ("staff-request@agency.gov.au", head(sender="staff-request@agency.gov.au"), "list address"),
        ("alice@agency.gov.au", head("Auto-Submitted: auto-replied"), "Auto-Submitted"),
        ("alice@agency.gov.au", head("Precedence: junk"), "Precedence"),
        ("alice@agency.gov.au", head("List-Unsubscribe: <mailto:x@agency.gov.au>"), "List-Unsubscribe"),
    ],
)
def test_who_may_be_sent_a_notice(sender: str, raw: bytes, refused: str | None) -> None:
    reason = GUARD.refusal(headers_of(raw), sender)
    assert (reason is None) if refused is None else (reason is not None and refused in reason)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 's.sqlite3'}")
    store.migrate()
    yield store
    store.close()


def test_the_notice_budget_is_per_sender_and_case_insensitive(store: Store) -> None:
    budget = NoticeBudget(store, 2)
    assert [budget.take("Alice@agency.gov.au") for _ in range(4)] == [True, True, False, False]
    assert budget.take("alice@AGENCY.gov.au") is False
    assert budget.take("bob@agency.gov.au") is True
    assert NoticeBudget(store, 0).take("carol@agency.gov.au") is False


@pytest.mark.parametrize(
    ("body", "action", "justification"),
    [
        ("SEND\r\nThe client asked for it.\r\n\r\n> quoted notice", "send", "The client asked for it."),
        ("  \r\nsend: approved by the director\r\n", "send", "approved by the director"),
        ("Cancel\r\n", "cancel", ""),
        ("SEND\r\nNeeded today.\r\nOn Tue, 1 Jul 2025, gateway wrote:\r\n> SEND", "send", "Needed today."),
        ("Yes please send it", "", ""),
        ("", "", ""),
    ],
)
def test_reading_a_reply(body: str, action: str, justification: str) -> None:
    raw = f"From: alice@agency.gov.au\r\nSubject: Re: x\r\nContent-Type: text/plain\r\n\r\n{body}".encode()
    command = parse_reply(raw)
    assert (command.action, command.justification) == (action, justification)


def test_reading_an_html_reply_ignores_the_quoted_notice() -> None:
    raw = (
        b"From: alice@agency.gov.au\r\nContent-Type: text/html\r\n\r\n"
        b"<div>CANCEL</div><blockquote>SEND please</blockquote>"
    )
    assert parse_reply(raw).action == "cancel"


def test_reply_addresses_carry_the_token_and_only_ours_count() -> None:
    token = new_token()
    address = reply_address(token, "dlp-gateway@agency.gov.au")
    assert token_of(address, "dlp-gateway@agency.gov.au") == token
    assert token_of(address.upper(), "dlp-gateway@agency.gov.au") == token  # case folded in transit
    assert token_of(address.replace("agency.gov.au", "example.org"), "dlp-gateway@agency.gov.au") is None
    assert token_of("bob@agency.gov.au", "dlp-gateway@agency.gov.au") is None
    assert token_of("dlp-confirm+nonsense!@agency.gov.au", "dlp-gateway@agency.gov.au") == "nonsense!"
    assert len(token) == 32 and token_hash(token) == token_hash(token.upper()) != token


def test_detected_values_in_the_subject_are_masked_or_the_subject_withheld() -> None:
    subject = "Refund for TFN 123 456 782 today"
    found = Finding("AU_TFN", 0.95, "subject", "••• ••• 782", start=15, end=26)
    assert safe_subject(subject, [found]) == "Refund for TFN ••• ••• 782 today"
    wrong_offsets = Finding("AU_TFN", 0.95, "subject", "••• ••• 782", start=0, end=5)
    assert safe_subject(subject, [wrong_offsets]) == WITHHELD_SUBJECT
    assert safe_subject("Lunch", [Finding("AU_TFN", 0.9, "body", "••• ••• 782")]) == "Lunch"


def writer(templates: Templates) -> NoticeWriter:
    return NoticeWriter(templates, "dlp-gateway@agency.gov.au", b"k" * 32)


def test_notices_are_signed_and_a_changed_body_is_not_ours() -> None:
    summary = Summary("abc123", "Refund", "alice@agency.gov.au", ("bob@example.com",), (), ())
    raw = writer(Templates()).compose("notify", "alice@agency.gov.au", {"summary": summary})
    value = str(headers_of(raw)[NOTICE_HEADER])
    assert is_own_notice(b"k" * 32, raw, value)
    # Relayed: a header added on top, line endings changed.
    relayed = b"Received: from mx by gateway\r\n" + raw.replace(b"\r\n", b"\n")
    assert is_own_notice(b"k" * 32, relayed, value)
    assert not is_own_notice(b"other key" * 4, raw, value)
    assert not is_own_notice(b"k" * 32, raw.replace(b"take care", b"TFN 123 456 782 care"), value)
    assert not is_own_notice(b"k" * 32, raw, value, now=10**12)  # too old


def test_an_agency_can_override_a_template(tmp_path: Path) -> None:
    (tmp_path / "notice_notify_subject.txt").write_text("Agency notice about {{ summary.subject }}")
    summary = Summary("abc123", "Refund", "alice@agency.gov.au", (), (), ())
    raw = writer(Templates(str(tmp_path))).compose("notify", "alice@agency.gov.au", {"summary": summary})
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Subject"] == "Agency notice about Refund"
    assert msg["Auto-Submitted"] == "auto-replied"


def test_html_notices_escape_what_they_show(tmp_path: Path) -> None:
    summary = Summary("abc123", "<script>x</script>", "alice@agency.gov.au", ("<b>@example.com",), (), ())
    raw = writer(Templates()).compose("notify", "alice@agency.gov.au", {"summary": summary})
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    html = msg.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_settings_check_the_new_keys(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("confirm: {expiry_action: keep}\n")
    with pytest.raises(SettingsError, match=r"confirm\.expiry_action"):
        load_settings(path)
    path.write_text("confirm: {template_dir: /nonexistent/dir}\n")
    with pytest.raises(SettingsError, match="template_dir"):
        load_settings(path)
    path.write_text(
        "confirm: {token_lifetime_s: 3600, notices_per_sender_per_hour: 5}\noutbox: {lease_s: 60}\n"
    )
    settings = load_settings(path)
    assert settings.confirm.token_lifetime_s == 3600 and settings.outbox.lease_s == 60
