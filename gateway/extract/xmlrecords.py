"""Stream a large XML part record by record (sheet rows, shared strings) in bounded memory.

A worksheet of 150,000 rows is ~100 MB of XML: building a tree is out of the
question and even an event parser costs seconds, because every element becomes
a Python object.  So the stream is cut into chunks that end on a record's end
tag and each chunk goes to a *fast* reader, a regular expression that knows the
few shapes spreadsheet writers actually produce.  The fast reader must account
for every character of its chunk; the moment it meets anything else (a comment,
CDATA, a namespace prefix, rich text, a DOCTYPE, another encoding), the rest of
the part goes through the *exact* reader instead: lxml's pull parser, with
entities and network access off, records cleared as they are read.  Nothing is
skipped either way; the exact reader is only slower.

Memory is a chunk plus what the consumer keeps, whatever the part's size.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from lxml import etree

from gateway.extract.context import Context

# A record never spans more than this much unread XML in the fast reader; a longer one
# (one giant row) is read by the exact reader, which keeps it as a tree of elements.
MAX_PENDING_BYTES = 8 * 1024 * 1024

_UNSAFE_PROLOG = re.compile(rb"<!|\A\xff\xfe|\A\xfe\xff|\A\x00|\A<\x00")
_ENCODING = re.compile(rb"""<\?xml[^>]*\bencoding\s*=\s*["']([^"']*)["']""")


class RecordReader(Protocol):
    """What :func:`read_records` feeds: chunks of whole records, or single record elements."""

    def fast(self, chunk: str) -> bool:
        """Read a chunk of whole records; False (and nothing kept) if it holds an unknown shape."""

    def exact(self, element: etree._Element) -> None:
        """Read one record element from the exact parser."""

    def full(self) -> bool:
        """True once the reader wants no more records (its text budget is spent)."""


@dataclass(frozen=True)
class RecordTags:
    """How records of one part look: ``<row`` … ``</row>``, ``row`` for the exact parser."""

    start: re.Pattern[bytes]  # the first record's start tag, unprefixed
    end: bytes  # a record's end tag, unprefixed
    local_name: str  # the record element's local name


def pull_parser(local_name: str) -> etree.XMLPullParser:
    """An lxml pull parser reporting the ends of ``local_name`` elements, hostile XML defused."""
    return etree.XMLPullParser(
        events=("end",),
        tag=f"{{*}}{local_name}",
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
    )


def _fast_prolog(header: bytes) -> bool:
    """Whether the part's prolog leaves the fast reader on safe ground (UTF-8, no DTD)."""
    if _UNSAFE_PROLOG.search(header):
        return False
    declared = _ENCODING.search(header)
    return declared is None or declared.group(1).lower().replace(b"_", b"-") in (b"utf-8", b"utf8")


class _Stream:
    """The driver's state: header, unread bytes, and the exact parser once switched to it."""

    def __init__(self, reader: RecordReader, tags: RecordTags) -> None:
        self.reader = reader
        self.tags = tags
        self.header: bytes | None = None  # the bytes before the first record, once found
        self.pending = b""
        self.parser: etree.XMLPullParser | None = None

    def feed(self, data: bytes) -> None:
        if self.parser is not None:
            self._feed_exact(data)
            return
        self.pending += data
        if self.header is None and not self._split_header():
            return
        cut = self.pending.rfind(self.tags.end)
        if cut >= 0:
            cut += len(self.tags.end)
            chunk, rest = self.pending[:cut], self.pending[cut:]
            if self._fast(chunk):
                self.pending = rest
            else:
                self._switch(chunk + rest)
                return
        if len(self.pending) > MAX_PENDING_BYTES:
            self._switch(self.pending)

    def _split_header(self) -> bool:
        found = self.tags.start.search(self.pending)
        if found is None:
            if len(self.pending) > MAX_PENDING_BYTES:
                self.header = b""
                self._switch(self.pending)
            return False
        self.header, self.pending = self.pending[: found.start()], self.pending[found.start() :]
        if not _fast_prolog(self.header):
            self._switch(self.pending)
            return False
        return True

    def _fast(self, chunk: bytes) -> bool:
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError:
            return False  # the exact parser reports it
        return self.reader.fast(text)

    def _switch(self, unread: bytes) -> None:
        """Read everything from here on with the exact parser (header first, for namespaces)."""
        self.parser = pull_parser(self.tags.local_name)
        self.pending = b""
        self._feed_exact((self.header or b"") + unread)

    def _feed_exact(self, data: bytes) -> None:
        assert self.parser is not None
        try:
            self.parser.feed(data)
        finally:
            self._drain(self.parser)  # records before a fault are still read

    def _drain(self, parser: etree.XMLPullParser) -> None:
        for _, element in parser.read_events():
            if self.reader.full():
                return
            self.reader.exact(element)
            element.clear(keep_tail=False)
            parent = element.getparent()
            while parent is not None and element.getprevious() is not None:
                del parent[0]

    def close(self) -> None:
        """Finish the part; raises ``etree.XMLSyntaxError`` when it is malformed or truncated."""
        if self.parser is None:
            # The fast reader does not check that the document is whole: parse what is left
            # around it (prolog and whatever follows the last record) to find out.
            self.parser = pull_parser(self.tags.local_name)
            self.parser.feed(self.header if self.header is not None else b"")
            self.parser.feed(self.pending)
            self.pending = b""
        try:
            self.parser.close()
        finally:
            self._drain(self.parser)


def read_records(chunks: Iterable[bytes], tags: RecordTags, reader: RecordReader, ctx: Context) -> None:
    """Feed a part's records to ``reader``, stopping early once it is full.

    Raises ``etree.XMLSyntaxError`` for a malformed or truncated part (after the
    reader has received every record before the fault), and whatever reading
    ``chunks`` raises (limits, a corrupt ZIP member).
    """
    stream = _Stream(reader, tags)
    for data in chunks:
        stream.feed(data)
        if reader.full():
            return
        ctx.check_time()
    stream.close()
