"""A held message as a reviewer sees it: headers, the text of every part, findings
highlighted, and detected values masked unless a reason was given to reveal them.

Stored findings carry masked excerpts but no offsets, so to know *where* the
values are, the message is scanned again with the gateway's own scanner (the
same detectors as on the SMTP path).  Every value found is masked at its
offsets and wherever else the same value appears (the HTML source, headers).
If that scan fails, no text is shown at all: the findings list still says why
the message was held, and nothing unmasked can slip out.

Nothing here produces HTML: the template escapes every piece, so HTML mail is
shown as its text and its source as text, never rendered, with no live links.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message

from detectors.masking import MASK as MASK_CHAR
from detectors.masking import mask
from gateway.extract.text import decode_text
from gateway.model import Finding, ScanResult, Segment
from gateway.parse import parse_message
from gateway.pipeline import Scans
from gateway.scan import Scanner
from gateway.settings import Settings

log = logging.getLogger(__name__)

# Markings and phrases are labels a reviewer needs to read, not secrets.
SHOWN_AS_IS = frozenset({"PROTECTIVE_MARKING", "MARKING_MISMATCH", "CONFIDENTIAL_PHRASE"})
MIN_VALUE_CHARS = 4  # shorter values would mask unrelated text wherever they recur
MAX_HEADERS = 200
MAX_SOURCE_CHARS = 200_000


@dataclass(frozen=True)
class Span:
    """A run of text; ``entity`` is set when it is a detected value."""

    text: str
    entity: str = ""
    masked: bool = False


@dataclass(frozen=True)
class TextView:
    location: str
    spans: list[Span]
    truncated: bool = False


@dataclass(frozen=True)
class AttachmentView:
    location: str
    filename: str
    declared_type: str
    real_type: str
    size: int
    findings: list[Finding]


@dataclass
class ContentView:
    """What the message page shows of the content."""

    available: bool
    headers: list[TextView] = field(default_factory=list)
    parts: list[TextView] = field(default_factory=list)
    html_sources: list[TextView] = field(default_factory=list)
    attachments: list[AttachmentView] = field(default_factory=list)
    problem: str = ""


class Rescanner:
    """Scans a held message again to locate its values.

    Uses the running gateway's scanner pool when there is one; otherwise builds a
    scanner once, on first use, and runs it in a thread.
    """

    def __init__(self, settings: Settings, pool: Scans | None):
        self._settings = settings
        self._pool = pool
        self._scanner: Scanner | None = None
        self._lock = threading.Lock()

    async def scan(self, raw: bytes) -> ScanResult:
        """Findings (with offsets) for a raw message."""
        if self._pool is not None:
            return await self._pool.scan(raw)
        return await asyncio.to_thread(self._scan_here, raw)

    def _scan_here(self, raw: bytes) -> ScanResult:
        with self._lock:
            if self._scanner is None:
                self._scanner = Scanner.build(self._settings.detector_config(), self._settings.limits)
            return self._scanner.scan(raw)


async def content_view(rescanner: Rescanner, raw: bytes, stored: list[Finding], reveal: bool) -> ContentView:
    """The message's content for display: masked, unless ``reveal`` (already audited by the caller)."""
    try:
        result = await rescanner.scan(raw)
    except Exception as exc:  # any scanner failure must hide the text, not break the page
        log.warning("console rescan failed: %s", type(exc).__name__)
        return ContentView(
            available=False, problem="the message could not be scanned again, so its text is hidden"
        )
    return await asyncio.to_thread(build_view, raw, result, stored, reveal)


def build_view(raw: bytes, result: ScanResult, stored: list[Finding], reveal: bool) -> ContentView:
    """Assemble the view from a raw message and a fresh scan of it."""
    parsed = parse_message(raw)
    located = [f for f in result.findings if f.end > f.start and f.entity_type not in SHOWN_AS_IS]
    by_location: dict[str, list[Finding]] = {}
    for f in located:
        by_location.setdefault(f.location, []).append(f)
    values = _values(parsed.segments, by_location)
    segments = {s.location: s.text for s in parsed.segments}
    view = ContentView(available=True)
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    for name, value in list(msg.items())[:MAX_HEADERS]:
        text = segments.get("subject", str(value)) if name.lower() == "subject" else _header_text(value)
        own = by_location.get("subject", []) if name.lower() == "subject" else []
        view.headers.append(TextView(name, _spans(text, own, values, reveal)))
    for segment in parsed.segments:
        if segment.location == "subject" or segment.location.startswith("header:"):
            continue
        view.parts.append(
            TextView(
                segment.location, _spans(segment.text, by_location.get(segment.location, []), values, reveal)
            )
        )
    for location, source in _html_sources(msg):
        truncated = len(source) > MAX_SOURCE_CHARS
        view.html_sources.append(
            TextView(location, _spans(source[:MAX_SOURCE_CHARS], [], values, reveal), truncated)
        )
    for att in result.attachments:
        own = [f for f in stored if f.location == att.location or f.location.startswith(att.location + "/")]
        view.attachments.append(
            AttachmentView(att.location, att.filename, att.declared_type, att.real_type, att.size, own)
        )
    return view


def _values(segments: list[Segment], by_location: dict[str, list[Finding]]) -> dict[str, str]:
    """Every detected value (value → entity type), to mask it wherever else it appears."""
    texts = {s.location: s.text for s in segments}
    values: dict[str, str] = {}
    for location, found in by_location.items():
        text = texts.get(location)
        if text is None:
            continue
        for f in found:
            value = text[f.start : f.end]
            if len(value.strip()) >= MIN_VALUE_CHARS:
                values.setdefault(value, f.entity_type)
    return values


def _spans(text: str, findings: list[Finding], values: dict[str, str], reveal: bool) -> list[Span]:
    """Split text into plain runs and detected values (masked unless revealed)."""
    ranges: list[tuple[int, int, str]] = [
        (f.start, f.end, f.entity_type) for f in findings if f.end <= len(text)
    ]
    for value, entity in values.items():
        start = text.find(value)
        while start != -1:
            ranges.append((start, start + len(value), entity))
            start = text.find(value, start + 1)
    spans: list[Span] = []
    pos = 0
    for start, end, entity in _merge(ranges):
        if start > pos:
            spans.append(Span(text[pos:start]))
        value = text[start:end]
        spans.append(Span(value if reveal else mask(value, entity), entity, masked=not reveal))
        pos = end
    if pos < len(text):
        spans.append(Span(text[pos:]))
    return spans


def _merge(ranges: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Overlapping ranges merged into one, so no part of a value escapes its mask."""
    merged: list[tuple[int, int, str]] = []
    for start, end, entity in sorted(ranges):
        if merged and start < merged[-1][1]:
            last = merged[-1]
            merged[-1] = (last[0], max(last[1], end), last[2])
        else:
            merged.append((start, end, entity))
    return merged


def _header_text(value: object) -> str:
    try:
        return str(value)
    except Exception:  # a hostile header can make the email package raise on str()
        return "(header could not be decoded)"


def _html_sources(msg: Message) -> list[tuple[str, str]]:
    """The source of every inline HTML part, as text (for reviewers to see what it hides)."""
    sources: list[tuple[str, str]] = []
    for index, part in enumerate(msg.walk()):
        if part.get_content_type() != "text/html" or part.get_content_disposition() == "attachment":
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            sources.append((f"html source (part {index})", decode_text(payload, part.get_content_charset())))
    return sources


def mask_with_excerpts(text: str, findings: list[Finding], location: str = "subject") -> str:
    """Mask values in a short stored text (a subject) using the stored masked excerpts.

    An excerpt such as ``••• ••• 782`` is a pattern: each mask stands for one letter
    or digit, everything else is literal.  Used where rescanning every row (the
    queue) would be too slow; the message page itself rescans.
    """
    for f in findings:
        if f.location != location or f.entity_type in SHOWN_AS_IS or MASK_CHAR not in f.excerpt:
            continue
        pattern = "".join(r"[^\W_]" if ch == MASK_CHAR else re.escape(ch) for ch in f.excerpt)
        text = re.sub(pattern, _masker(f.entity_type), text)
    return text


def _masker(entity_type: str) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        return mask(match.group(0), entity_type)

    return replace
