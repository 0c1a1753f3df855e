"""Rewriting the outgoing copy: redaction (presidio-anonymizer operators) and tagging.

Findings carry offsets into the text the parser produced for their location, so
the same text is rebuilt here (same decoding) and the offsets applied to it.
Anything that cannot be rewritten with certainty (a finding in an attachment,
in HTML, in another header, in a nested message, or a body split over several
parts) makes the whole redaction fail: the caller then holds the message, so a
half-redacted copy never leaves.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from email.header import Header
from email.message import EmailMessage, Message

from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

from detectors.budget import limited_entities
from gateway.extract.text import decode_text
from gateway.model import Finding, Redaction

REWRITABLE = ("subject", "body")
OUTPUT_POLICY = email.policy.SMTP
MASK_DEFAULTS = {"masking_char": "*", "chars_to_mask": 100, "from_end": False}
SUBJECT_RE = re.compile(rb"(?im)^subject:[ \t]*")


@dataclass(frozen=True)
class Redacted:
    """The redacted message, or why there is none (``raw`` is None)."""

    raw: bytes | None
    count: int = 0
    reason: str = ""


def redact_message(raw: bytes, findings: list[Finding], redactions: list[Redaction]) -> Redacted:
    """Apply every redaction to ``raw``; None (with a reason) when it cannot be done safely."""
    chosen = _chosen(findings, redactions)
    if not chosen:
        return Redacted(raw)
    uncounted = sorted(limited_entities(findings) & {e for r in redactions for e in r.entities})
    if uncounted:
        # Detection stopped counting these: some values were never located, so cannot be redacted.
        return Redacted(None, reason=f"too many {', '.join(uncounted)} to redact every one")
    elsewhere = sorted({f.location for f, _ in chosen if f.location not in REWRITABLE})
    if elsewhere:
        return Redacted(None, reason=f"cannot redact in {', '.join(elsewhere)}")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    in_body = [(f, r) for f, r in chosen if f.location == "body"]
    if in_body:
        problem = _redact_body(msg, in_body)
        if problem:
            return Redacted(None, reason=problem)
    in_subject = [(f, r) for f, r in chosen if f.location == "subject"]
    if in_subject:
        subject = str(msg.get("Subject", ""))
        new_subject = _anonymize(subject, in_subject)
        if new_subject is None:
            return Redacted(None, reason="subject offsets do not fit")
        msg.replace_header("Subject", new_subject)
    return Redacted(msg.as_bytes(policy=OUTPUT_POLICY), count=len(chosen))


def _chosen(findings: list[Finding], redactions: list[Redaction]) -> list[tuple[Finding, Redaction]]:
    """Each finding to redact with the first redaction asking for its type."""
    chosen = []
    for finding in findings:
        for redaction in redactions:
            if finding.entity_type in redaction.entities and finding.score >= redaction.min_score:
                chosen.append((finding, redaction))
                break
    return chosen


def _redact_body(msg: EmailMessage, chosen: list[tuple[Finding, Redaction]]) -> str:
    """Rewrite the one plain-text body part; a problem description if that is not possible."""
    plain, html = _body_parts(msg)
    if html:
        return "the message has an HTML body, which cannot be rewritten safely"
    if len(plain) != 1:
        return f"the body is in {len(plain)} text parts"
    part = plain[0]
    data = part.get_payload(decode=True)
    text = decode_text(data if isinstance(data, bytes) else b"", part.get_content_charset())
    new_text = _anonymize(text, chosen)
    if new_text is None:
        return "body offsets do not fit the body text"
    if isinstance(part, EmailMessage):
        part.set_content(new_text, subtype="plain", charset="utf-8")
    return ""


def _body_parts(msg: Message) -> tuple[list[Message], list[Message]]:
    """Top-level inline text parts, as the parser sees them (``body`` and ``body:html``);
    attached messages are not descended into: their text is an attachment's."""
    plain: list[Message] = []
    html: list[Message] = []
    stack = [msg]
    while stack:
        part = stack.pop(0)
        ctype = part.get_content_type()
        if part.is_multipart() and not ctype.startswith("message/"):
            stack[:0] = [p for p in part.get_payload() or [] if isinstance(p, Message)]
            continue
        if ctype not in ("text/plain", "text/html") or part.get_content_disposition() == "attachment":
            continue
        if part.get_filename():
            continue
        (plain if ctype == "text/plain" else html).append(part)
    return plain, html


def _anonymize(text: str, chosen: list[tuple[Finding, Redaction]]) -> str | None:
    """Apply the operators at the findings' offsets; None if an offset lies outside the text."""
    if any(not 0 <= f.start < f.end <= len(text) for f, _ in chosen):
        return None
    results = [RecognizerResult(f.entity_type, f.start, f.end, f.score) for f, _ in chosen]
    operators = {f.entity_type: OperatorConfig(r.operator, _params(r)) for f, r in chosen}
    return AnonymizerEngine().anonymize(text, results, operators).text


def _params(redaction: Redaction) -> dict[str, object]:
    """The operator's parameters; presidio's mask needs all three, so default the unset ones."""
    given = dict(redaction.params)
    return {**MASK_DEFAULTS, **given} if redaction.operator == "mask" else given


def tag_message(raw: bytes, headers: dict[str, str], subject_prefix: str) -> bytes:
    """Add header lines and prefix the subject, leaving every other byte as it was."""
    if not headers and not subject_prefix:
        return raw
    added = b"".join(_header_line(name, value) for name, value in headers.items())
    if subject_prefix:
        raw = _prefix_subject(raw, subject_prefix)
    return added + raw


def _header_line(name: str, value: str) -> bytes:
    if not value.isascii():
        value = Header(value, "utf-8").encode()
    return f"{name}: {value}\r\n".encode("ascii")


def _prefix_subject(raw: bytes, prefix: str) -> bytes:
    end = _header_end(raw)
    match = SUBJECT_RE.search(raw, 0, end)
    encoded = (prefix if prefix.isascii() else Header(prefix, "utf-8").encode()).encode("ascii")
    if match is None:
        return b"Subject: " + encoded + b"\r\n" + raw
    existing = raw[match.end() : match.end() + len(encoded)]
    if existing == encoded:
        return raw  # a reply to an already prefixed message
    return raw[: match.end()] + encoded + b" " + raw[match.end() :]


def _header_end(raw: bytes) -> int:
    """Offset of the blank line ending the header section (or the end of the message)."""
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    return min(ends) if ends else len(raw)
