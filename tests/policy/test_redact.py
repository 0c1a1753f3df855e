"""Redaction and tagging of the outgoing copy, with findings from the real scanner."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator

import pytest

from detectors.config import DetectorConfig
from gateway.model import Redaction
from gateway.redact import redact_message, tag_message
from gateway.scan import Scanner
from tests.support import message

TFN = "123 456 782"
TFN_BODY = f"Client tax file number {TFN} for the refund."


@pytest.fixture(scope="module")
def scanner() -> Iterator[Scanner]:
    yield Scanner.build(DetectorConfig())


def mask(**params: object) -> list[Redaction]:
    return [Redaction(("AU_TFN",), "mask", tuple(sorted({"masking_char": "*", **params}.items())), 0.5)]


def body_of(raw: bytes) -> str:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


@pytest.mark.parametrize(
    ("redactions", "expected"),
    [
        (mask(chars_to_mask=100), "Client tax file number *********** for the refund."),
        (mask(chars_to_mask=7), "Client tax file number ******* 782 for the refund."),
        ([Redaction(("AU_TFN",), "replace", (("new_value", "[TFN removed]"),))], "number [TFN removed] for"),
    ],
)
def test_plain_body_is_redacted_with_the_operator(
    scanner: Scanner, redactions: list[Redaction], expected: str
) -> None:
    raw = message("refund", TFN_BODY)
    result = redact_message(raw, scanner.scan(raw).findings, redactions)
    assert result.raw is not None and result.count == 1
    assert expected in body_of(result.raw)
    assert TFN not in result.raw.decode()
    assert not [f for f in scanner.scan(result.raw).findings if f.entity_type == "AU_TFN"]


def test_hash_operator_leaves_no_value(scanner: Scanner) -> None:
    raw = message("refund", TFN_BODY)
    redactions = [Redaction(("AU_TFN",), "hash", (("hash_type", "sha256"),))]
    result = redact_message(raw, scanner.scan(raw).findings, redactions)
    assert result.raw is not None and TFN not in result.raw.decode()
    assert len(body_of(result.raw).split()[4]) == 64  # a sha256 hex digest where the number was


def test_subject_is_redacted_too(scanner: Scanner) -> None:
    raw = message(f"TFN {TFN}", "see subject")
    result = redact_message(raw, scanner.scan(raw).findings, mask())
    assert result.raw is not None
    assert email.message_from_bytes(result.raw, policy=email.policy.default)["Subject"] == "TFN ***********"


def test_other_entities_are_left_alone(scanner: Scanner) -> None:
    raw = message("refund", TFN_BODY + " Card 4111 1111 1111 1111.")
    result = redact_message(raw, scanner.scan(raw).findings, mask())
    assert result.raw is not None and "4111 1111 1111 1111" in body_of(result.raw)


def _multipart(html: str | None, attachment: bytes | None) -> bytes:
    msg = email.message.EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "alice@agency.gov.au", "bob@example.com", "refund"
    msg.set_content(TFN_BODY)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    if attachment is not None:
        msg.add_attachment(attachment, maintype="text", subtype="csv", filename="clients.csv")
    return msg.as_bytes(policy=email.policy.SMTP)


@pytest.mark.parametrize(
    ("html", "attachment", "reason"),
    [
        (f"<p>{TFN_BODY}</p>", None, "cannot redact in body:html"),
        (None, f"Client tax file number {TFN}\n".encode(), "cannot redact in attachment[1]:clients.csv"),
    ],
)
def test_what_cannot_be_rewritten_refuses_the_whole_redaction(
    scanner: Scanner, html: str | None, attachment: bytes | None, reason: str
) -> None:
    raw = _multipart(html, attachment)
    result = redact_message(raw, scanner.scan(raw).findings, mask())
    assert result.raw is None and reason in result.reason


def test_tagging_adds_headers_and_prefixes_subject_leaving_the_rest() -> None:
    raw = message("refund", "body text")
    tagged = tag_message(raw, {"X-DLP-Tag": "personal"}, "[SEC=OFFICIAL:Sensitive]")
    assert tagged.startswith(b"X-DLP-Tag: personal\r\n")
    assert b"\r\nSubject: [SEC=OFFICIAL:Sensitive] refund\r\n" in tagged
    assert tagged.replace(b"X-DLP-Tag: personal\r\n", b"").replace(b"[SEC=OFFICIAL:Sensitive] ", b"") == raw
    assert tag_message(tagged, {}, "[SEC=OFFICIAL:Sensitive]") == tagged  # no double prefix
    assert tag_message(raw, {}, "") is raw
