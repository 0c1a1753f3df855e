"""Limits that keep extraction of hostile attachments bounded in memory and time.

Every limit that stops extraction is reported as an ``UNSCANNABLE`` finding whose
``reason`` is ``limit:<field name>`` (e.g. ``limit:max_depth``), so the policy can
tell a part that was cut short from one that was read in full.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExtractLimits:
    """Every limit is configurable under ``limits:`` in the settings file."""

    max_text_bytes: int = 20 * 1024 * 1024  # total extracted text per message (UTF-8 bytes)
    # One decoded part, or one (decompressed) archive member read whole into memory.  Members that
    # are parsed as streams (XLSX sheets and shared strings) are never held whole; max_ratio, the
    # text budget and part_timeout bound them instead (see zipsafe.stream_member).
    max_part_bytes: int = 50 * 1024 * 1024
    max_depth: int = 8  # nesting of archives, embedded objects and attached messages
    max_members: int = 1000  # members per archive
    max_ratio: int = 100  # expansion ratio of a compressed member ...
    ratio_floor_bytes: int = 1024 * 1024  # ... judged only once it expands past this size
    max_pages: int = 500  # PDF pages, slides, spreadsheet sheets
    max_ocr_images: int = 20  # images sent to OCR per part (OCR costs ~1 s per page)
    max_image_pixels: int = 50_000_000  # larger images are not decoded (decompression bombs)
    part_timeout_s: float = 20.0  # wall-clock time for one top-level part, nested content included
    max_memory_bytes: int = 1024 * 1024 * 1024  # extra address space an isolated parser may use
    cache_entries: int = 256  # extraction results kept per Extractor (0 disables the cache)


class LimitExceeded(Exception):
    """A limit stopped extraction of one part; ``limit`` is the field name."""

    def __init__(self, limit: str) -> None:
        super().__init__(limit)
        self.limit = limit

    @property
    def reason(self) -> str:
        return f"limit:{self.limit}"


class GlobalLimitExceeded(LimitExceeded):
    """A limit that applies to the whole part (time, text budget).

    Nested extractions re-raise it so the whole part stops, instead of every
    remaining archive member reporting the same exhausted limit.
    """


class TextBudget:
    """Text still allowed for one message; share one instance across a message's parts."""

    def __init__(self, limit: int) -> None:
        self.remaining = limit
        self.exhausted = False

    def take(self, text: str) -> str:
        """Charge ``text`` against the budget and return what fits (possibly all of it).

        The returned text is always valid UTF-8 (lone surrogates from broken
        sources become U+FFFD), so later stages can encode it safely.
        """
        encoded = text.encode("utf-8", errors="replace")
        if len(encoded) <= self.remaining:
            self.remaining -= len(encoded)
            return encoded.decode("utf-8")
        fitted = encoded[: max(self.remaining, 0)]
        self.remaining = 0
        self.exhausted = True
        return fitted.decode("utf-8", errors="ignore")
