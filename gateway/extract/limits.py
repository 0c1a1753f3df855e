"""Limits that keep extraction of hostile attachments bounded in memory and time."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExtractLimits:
    """Every limit is configurable under ``limits:`` in the settings file."""

    max_text_bytes: int = 20 * 1024 * 1024  # total extracted text per message
    max_part_bytes: int = 50 * 1024 * 1024  # one decoded part or archive member
    max_depth: int = 8  # nesting of archives and attached messages
    max_members: int = 1000  # members per archive
    max_ratio: int = 100  # expansion ratio of a compressed member
    max_pages: int = 500  # PDF pages / slides
    part_timeout_s: float = 20.0
