"""A bounded LRU of extraction results keyed by content hash, owned by an :class:`Extractor`.

Identical attachments are common (the same PDF sent to fifty recipients one by
one, a signature logo on every message); extracting them once per warm process
saves most of the cost.  Results are stored with the location they were first
seen at and moved to the new location on a hit.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import replace

from gateway.model import Extraction

CacheKey = tuple[str, str, str]

# Results that depend on the moment (time left, text budget left) are not reusable.
_TRANSIENT_REASONS = ("limit:part_timeout", "limit:max_text_bytes", "parser_error:SIG", "parser_error:Memory")


def _size(result: Extraction) -> int:
    return sum(len(segment.text) for segment in result.segments) + 200 * len(result.findings)


def relocate(result: Extraction, old: str, new: str) -> Extraction:
    """A copy of ``result`` with every location under ``old`` moved under ``new``."""

    def move(location: str) -> str:
        return new + location[len(old) :] if location.startswith(old) else location

    moved = Extraction()
    moved.segments = [replace(s, location=move(s.location)) for s in result.segments]
    moved.findings = [
        replace(f, location=move(f.location), attributes=dict(f.attributes)) for f in result.findings
    ]
    moved.attachments = [replace(a, location=move(a.location)) for a in result.attachments]
    return moved


class ExtractionCache:
    """LRU of ``key -> (location, Extraction)`` bounded by entries and by text size."""

    def __init__(self, max_entries: int, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[CacheKey, tuple[str, Extraction, int]] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey, location: str) -> Extraction | None:
        """The cached result for ``key`` moved to ``location``, or None."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return relocate(entry[1], entry[0], location)

    def put(self, key: CacheKey, location: str, result: Extraction) -> None:
        """Remember a result unless it is transient or too large to be worth keeping."""
        if self.max_entries <= 0 or any(
            f.attributes.get("reason", "").startswith(_TRANSIENT_REASONS) for f in result.findings
        ):
            return
        size = _size(result)
        if size > self.max_bytes // 4:
            return
        if key in self._entries:
            self._bytes -= self._entries.pop(key)[2]
        self._entries[key] = (location, copy.deepcopy(result), size)
        self._bytes += size
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, (_, _, evicted) = self._entries.popitem(last=False)
            self._bytes -= evicted
