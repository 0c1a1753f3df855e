"""Attachment extraction: bytes in, text segments (with locations) out.

``extract_part`` is the one entry point the pipeline uses.  Each format family
lives in its own module; a part that cannot be read is never silently skipped:
it becomes an ``UNSCANNABLE`` (or ``ENCRYPTED``) finding for the policy to judge.
"""

from __future__ import annotations

import hashlib

from gateway.extract.limits import ExtractLimits
from gateway.extract.text import decode_text, html_to_text
from gateway.model import Attachment, Extraction, Finding, Segment

__all__ = ["ExtractLimits", "extract_part", "unscannable"]


def unscannable(location: str, reason: str) -> Finding:
    """A finding for a part the gateway could not read, saying why."""
    return Finding("UNSCANNABLE", 1.0, location, reason, attributes={"reason": reason})


def extract_part(
    data: bytes,
    *,
    filename: str,
    declared_type: str,
    charset: str | None,
    location: str,
    limits: ExtractLimits,
) -> Extraction:
    """Extract readable text from one attachment."""
    result = Extraction()
    result.attachments.append(
        Attachment(
            location=location,
            filename=filename,
            declared_type=declared_type,
            real_type=declared_type,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )
    )
    if len(data) > limits.max_part_bytes:
        result.findings.append(unscannable(location, "limit:max_part_bytes"))
        return result
    if declared_type == "text/html":
        result.segments.append(Segment(location, html_to_text(decode_text(data, charset))))
    elif declared_type.startswith("text/") or declared_type in ("application/json", "application/xml"):
        result.segments.append(Segment(location, decode_text(data, charset)))
    else:
        result.findings.append(unscannable(location, f"unsupported type {declared_type}"))
    return result
