"""Findings of recently scanned text, by digest: the same attachment is often sent again.

Postfix splits a message into one transaction per batch of recipients, senders
resend a corrected message with the same attachment, and a newsletter goes out
once per list.  Each worker keeps the findings of its last few hundred
segments, keyed by a digest of the text and what was asked of the detector.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field, replace

from gateway.model import Finding

# Texts shorter than this cost less to scan than to hash and look up.
MIN_CACHED_CHARS = 2048


@dataclass(frozen=True)
class Cached:
    """One segment's findings (location left blank) and how much of it NER read."""

    findings: tuple[Finding, ...]
    ner_used: int

    def at(self, location: str) -> list[Finding]:
        """The findings, placed at ``location``."""
        return [replace(f, location=location) for f in self.findings]


@dataclass
class ResultCache:
    """A bounded LRU of :class:`Cached` results (``entries`` 0: off)."""

    entries: int = 256
    _items: OrderedDict[bytes, Cached] = field(default_factory=OrderedDict, repr=False)

    def key(self, text: str, *context: object) -> bytes | None:
        """The cache key for ``text`` scanned under ``context``, or None when not worth caching."""
        if not self.entries or len(text) < MIN_CACHED_CHARS:
            return None
        digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=20)
        digest.update(repr(context).encode())
        return digest.digest()

    def get(self, key: bytes | None) -> Cached | None:
        """The cached result, marked recently used."""
        if key is None or key not in self._items:
            return None
        self._items.move_to_end(key)
        return self._items[key]

    def put(self, key: bytes | None, findings: list[Finding], ner_used: int) -> None:
        """Keep ``findings`` (their locations are dropped) under ``key``."""
        if key is None:
            return
        self._items[key] = Cached(tuple(replace(f, location="") for f in findings), ner_used)
        self._items.move_to_end(key)
        while len(self._items) > self.entries:
            self._items.popitem(last=False)
