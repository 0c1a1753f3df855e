"""Messages inside attachments: RFC 822 (.eml), Outlook (.msg) and TNEF (winmail.dat).

Each yields its headers (``#headers``), bodies (``#body``) and attachments,
which are extracted recursively at ``<location>/<attachment name>``.
"""

from __future__ import annotations

import email
import email.policy
from email.message import Message
from typing import Any

import extract_msg
import tnefparse

from gateway.extract.context import Context, Part
from gateway.extract.rtf import rtf_bytes_to_text
from gateway.extract.text import decode_text, html_to_text

_HEADERS = ("subject", "from", "to", "cc", "reply-to")


def extract_eml(part: Part, ctx: Context) -> None:
    """An attached RFC 822 message: headers, text bodies and attachments."""
    message = email.message_from_bytes(part.data, policy=email.policy.default)
    _walk_message(message, part.location, ctx)


def _walk_message(message: Message, location: str, ctx: Context) -> None:
    headers = [f"{name}: {message.get(name, '')}" for name in _HEADERS if message.get(name)]
    ctx.emit(f"{location}#headers", "\n".join(headers))
    _walk_entity(message, location, ctx, [0])


def _walk_entity(entity: Message, location: str, ctx: Context, counter: list[int]) -> None:
    # Walked by hand (not Message.walk) so nested messages count against max_depth.
    ctx.check_time()
    content_type = entity.get_content_type()
    if entity.is_multipart() and content_type != "message/rfc822":
        for child in entity.get_payload():
            if isinstance(child, Message):
                _walk_entity(child, location, ctx, counter)
        return
    counter[0] += 1
    filename = entity.get_filename() or ""
    if content_type == "message/rfc822":
        inner = entity.get_payload()
        inner_message = inner[0] if isinstance(inner, list) and inner else None
        nested = ctx.deeper(f"{location}/message[{counter[0]}]")
        if isinstance(inner_message, Message) and nested is not None:
            _walk_message(inner_message, f"{location}/{filename or f'message[{counter[0]}]'}", nested)
        return
    payload = entity.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    inline_text = content_type in ("text/plain", "text/html") and entity.get_content_disposition() != (
        "attachment"
    )
    if inline_text and not filename:
        text = decode_text(data, entity.get_content_charset())
        ctx.emit(f"{location}#body", html_to_text(text) if content_type == "text/html" else text)
        return
    ctx.recurse(
        data,
        f"{location}/{filename or f'part[{counter[0]}]'}",
        filename=filename,
        declared_type=content_type,
        charset=entity.get_content_charset(),
    )


def extract_msg_file(part: Part, ctx: Context) -> None:
    """An Outlook .msg item (message, appointment, contact, task…) and its attachments."""
    item = extract_msg.openMsg(part.data)
    try:
        _msg_item(item, part.location, ctx)
    finally:
        item.close()


def _msg_item(item: Any, location: str, ctx: Context) -> None:
    headers = [
        f"{label}: {value}"
        for label, value in (
            ("Subject", getattr(item, "subject", None)),
            ("From", getattr(item, "sender", None)),
            ("To", getattr(item, "to", None)),
            ("Cc", getattr(item, "cc", None)),
        )
        if value
    ]
    ctx.emit(f"{location}#headers", "\n".join(headers))
    ctx.emit(f"{location}#body", _msg_body(item))
    for index, attachment in enumerate(getattr(item, "attachments", []), start=1):
        ctx.check_time()
        name = str(getattr(attachment, "name", None) or f"attachment[{index}]")
        data = getattr(attachment, "data", None)
        member_location = f"{location}/{name}"
        if isinstance(data, bytes):
            ctx.recurse(data, member_location, filename=name)
        elif data is not None and hasattr(data, "attachments"):
            nested = ctx.deeper(member_location)
            if nested is not None:
                _msg_item(data, member_location, nested)


def _msg_body(item: Any) -> str:
    body = getattr(item, "body", None)
    if body:
        return str(body)
    html = getattr(item, "htmlBody", None)
    if html:
        return html_to_text(decode_text(html, None) if isinstance(html, bytes) else str(html))
    rtf = getattr(item, "rtfBody", None)
    return rtf_bytes_to_text(rtf) if isinstance(rtf, bytes) else ""


def extract_tnef(part: Part, ctx: Context) -> None:
    """A TNEF container (winmail.dat): message bodies and the attachments inside."""
    tnef = tnefparse.TNEF(part.data, do_checksum=False)
    # String MAPI properties carry subject, names and addresses; skip flags, dates, binary ids.
    properties = [
        f"{getattr(prop, 'name_str', '')}: {prop.data}"
        for prop in [*tnef.msgprops, *tnef.mapiprops]
        if isinstance(prop.data, str) and prop.data.strip()
    ]
    ctx.emit(f"{part.location}#properties", "\n".join(properties))
    for label, body in (("body", tnef.body), ("html", tnef.htmlbody), ("rtf", tnef.rtfbody)):
        if not body:
            continue
        raw = body if isinstance(body, bytes) else str(body).encode("utf-8")
        if label == "rtf":
            text = rtf_bytes_to_text(raw)
        else:
            text = decode_text(raw, None)
            text = html_to_text(text) if label == "html" else text
        ctx.emit(f"{part.location}#{label}", text)
    for index, attachment in enumerate(tnef.attachments, start=1):
        ctx.check_time()
        try:
            name = attachment.long_filename() or ""
        except (AttributeError, UnicodeDecodeError, KeyError):
            name = ""
        name = name or f"attachment[{index}]"
        data = attachment.data if isinstance(attachment.data, bytes) else b""
        ctx.recurse(data, f"{part.location}/{name}", filename=name)
