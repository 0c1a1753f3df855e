"""MIME parsing: raw bytes → the readable text of the message and the parts to extract.

Uses the standard library's ``email`` package with ``policy.default``.  Nothing
here raises on a malformed message: it reads what it can and records the
defects, so a broken message is still scanned as far as possible.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass, field
from email.message import EmailMessage, Message

from gateway.extract.text import decode_text, html_to_text
from gateway.model import Segment

# Headers whose values are scanned as text of their own (markings live here).
SCANNED_HEADERS = ("X-Protective-Marking", "Keywords", "Comments")
MAX_NESTING = 20  # attached messages within attached messages


@dataclass(frozen=True)
class PartToExtract:
    """A leaf part that is not body text: handed to the attachment extractor."""

    location: str
    data: bytes
    filename: str
    declared_type: str
    charset: str | None


@dataclass
class ParsedMessage:
    """The readable text of a message, its attachments, and what was wrong with it."""

    segments: list[Segment] = field(default_factory=list)
    parts: list[PartToExtract] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    subject: str = ""
    message_id: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    too_deep: list[str] = field(default_factory=list)


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse a message into segments (subject, headers, body text) and attachment parts."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    parsed = ParsedMessage()
    parsed.subject = _header(msg, "Subject")
    parsed.message_id = _header(msg, "Message-ID")
    for name in ("From", "To", "Cc", "Subject", "Message-ID", "Date", "X-Protective-Marking"):
        value = _header(msg, name)
        if value:
            parsed.headers[name] = value
    _walk_message(msg, "", parsed, depth=0, counter=[0])
    return parsed


def _walk_message(msg: Message, prefix: str, parsed: ParsedMessage, depth: int, counter: list[int]) -> None:
    subject = _header(msg, "Subject")
    if subject:
        parsed.segments.append(Segment(f"{prefix}subject", subject))
    for name in SCANNED_HEADERS:
        value = _header(msg, name)
        if value:
            parsed.segments.append(Segment(f"{prefix}header:{name}", value))
    _walk_part(msg, prefix, parsed, depth, counter)


def _walk_part(part: Message, prefix: str, parsed: ParsedMessage, depth: int, counter: list[int]) -> None:
    ctype = part.get_content_type()
    if part.is_multipart() and not ctype.startswith("message/"):
        _record_defects(part, prefix, parsed)
        for sub in part.get_payload() or []:
            if isinstance(sub, Message):
                _walk_part(sub, prefix, parsed, depth, counter)
        return
    filename = _filename(part)
    if ctype == "message/rfc822":
        _record_defects(part, prefix, parsed)
        counter[0] += 1
        location = f"{prefix}attachment[{counter[0]}]:{filename or 'message.eml'}"
        if depth + 1 > MAX_NESTING:
            parsed.too_deep.append(location)
            return
        inner = part.get_payload()
        inner_msg = inner[0] if isinstance(inner, list) and inner else None
        if isinstance(inner_msg, Message):
            _walk_message(inner_msg, f"{location}/", parsed, depth + 1, [0])
        return
    data = _payload_bytes(part, prefix, parsed)
    _record_defects(part, prefix, parsed)  # decoding adds defects of its own
    disposition = part.get_content_disposition()
    if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
        text = decode_text(data, part.get_content_charset())
        location = f"{prefix}body" if ctype == "text/plain" else f"{prefix}body:html"
        parsed.segments.append(Segment(location, html_to_text(text) if ctype == "text/html" else text))
        return
    counter[0] += 1
    location = f"{prefix}attachment[{counter[0]}]:{filename or ctype}"
    parsed.parts.append(PartToExtract(location, data, filename, ctype, part.get_content_charset()))


def _payload_bytes(part: Message, prefix: str, parsed: ParsedMessage) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception as exc:  # the email package can still trip on hostile input
        parsed.defects.append(f"{prefix or 'message'}: cannot decode part: {type(exc).__name__}")
        data = None
    if isinstance(data, bytes):
        return data
    payload = part.get_payload()
    return payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""


def _record_defects(part: Message, prefix: str, parsed: ParsedMessage) -> None:
    for defect in getattr(part, "defects", []):
        parsed.defects.append(f"{prefix or 'message'}: {type(defect).__name__}")


def _header(msg: Message, name: str) -> str:
    """A header's decoded value; broken encodings fall back to the raw text."""
    try:
        value = msg.get(name)
    except Exception:  # malformed header folding or encoded words
        return ""
    if value is None:
        return ""
    try:
        return str(value)
    except Exception:
        return ""


def _filename(part: Message) -> str:
    try:
        name = part.get_filename()
    except Exception:
        return ""
    return str(name) if name else ""


def as_email_message(raw: bytes) -> EmailMessage:
    """The message as an EmailMessage (for rendering in the console and CLI)."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg
