"""Rows of a worksheet part and the shared-string table, read as record streams.

Both are :class:`gateway.extract.xmlrecords.RecordReader` implementations: a
fast reader for the shapes Excel, LibreOffice, openpyxl and xlsxwriter write,
and an exact one for single elements from lxml.  A row becomes one line, cells
separated by tabs at their column positions (``A1`` and ``C1`` give ``a\t\tc``),
trailing empty cells dropped and empty rows skipped, as the openpyxl-based
reader printed them.  The row count ignores the sheet's ``<dimension>``, which
openpyxl trusted: a forged dimension must not hide rows.
"""

from __future__ import annotations

import re
from types import MappingProxyType

from lxml import etree

from gateway.extract.xlsxcells import INLINE, NUMBER, SHARED, CellValues, xml_unescape
from gateway.extract.xmlrecords import RecordTags

ROWS = RecordTags(start=re.compile(rb"<row[\s>/]"), end=b"</row>", local_name="row")
SHARED_STRINGS = RecordTags(start=re.compile(rb"<si[\s>/]"), end=b"</si>", local_name="si")

# One match per token of a chunk of rows.  A cell: column letters, other attributes,
# <v> text, inline-string text; then a row end (with the next row's start tag, which
# saves a match per row); then what needs no reading (row start tags, whitespace);
# the last alternative takes any other character and sends the chunk to the exact
# reader, so no content can slip between the tokens unread.
_ROW_TOKENS = re.compile(
    r'<c r="([A-Z]{1,3})[0-9]+"([^>/]*)(?:/>|>'
    r"(?:<f\b[^>/]*(?:/>|>[^<]*</f>))?"
    r"(?:<v>([^<]*)</v>)?"
    r'(?:<is><t(?: xml:space="preserve")?>([^<]*)</t></is>)?'
    r"</c>)"
    r"|(</row>)(?:<row\b[^>]*>)?|<row\b[^>]*>|\s+|(.)",
    re.DOTALL | re.ASCII,  # XML's whitespace is ASCII; matching only it is also faster
)
_STRING_TOKENS = re.compile(
    r'(<si>)(?:<t(?: xml:space="preserve")?>([^<]*)</t>|<t/>)</si>|(<si/>)|\s+|(.)', re.DOTALL | re.ASCII
)
_ATTRIBUTE = re.compile(r'\s([ts])="([^"]*)"')
_MAX_COLUMN = 16384  # XFD
# How the fast reader handles a cell, by its attributes.
_INLINE, _SHARED, _PLAIN_NUMBER, _OTHER = range(4)


def column_number(letters: str) -> int:
    """``A`` → 1, ``AA`` → 27, ``XFD`` → 16384."""
    number = 0
    for letter in letters:
        number = number * 26 + ord(letter) - 64
    return number


def _column_table() -> MappingProxyType[str, int]:
    letters = [chr(65 + i) for i in range(26)]
    names = letters + [a + b for a in letters for b in letters]
    names += [a + b for a in letters for b in names[26:]]
    return MappingProxyType({name: column_number(name) for name in names[:_MAX_COLUMN]})


_COLUMNS = _column_table()


def _style_and_type(attributes: str) -> tuple[str, int]:
    found = dict(_ATTRIBUTE.findall(attributes))
    style = found.get("s", "0")
    return found.get("t", NUMBER), int(style) if style.isdigit() else 0


def _local(tag: object) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def string_item_text(element: etree._Element) -> str:
    """An ``<si>`` or ``<is>``: its plain ``<t>`` and rich-text runs' ``<t>``, phonetic runs left out."""
    pieces: list[str] = []
    for child in element:
        name = _local(child.tag)
        if name == "t":
            pieces.append(child.text or "")
        elif name == "r":
            pieces.extend(t.text or "" for t in child if _local(t.tag) == "t")
    return "".join(pieces)


def _line(cells: dict[int, str]) -> str:
    width = max(cells)
    return "\t".join(cells.get(column, "") for column in range(1, width + 1)).rstrip("\t")


class SheetRows:
    """Collects a worksheet's text, one line per row, until ``budget`` characters are reached."""

    def __init__(self, values: CellValues, budget: int) -> None:
        self.values = values
        self.budget = budget
        self.size = 0
        self.blocks: list[str] = []  # one block of lines per chunk: far fewer objects than lines
        self._kinds: dict[str, tuple[int, str, int]] = {}
        self._columns = dict(_COLUMNS)  # a plain dict: the lookup is on the hot path

    def text(self) -> str:
        """The sheet's text so far."""
        return "\n".join(self.blocks)

    def full(self) -> bool:
        return self.size > self.budget

    def _keep(self, lines: list[str]) -> None:
        if lines:
            block = "\n".join(lines)
            self.blocks.append(block)
            self.size += len(block) + 1

    def _kind(self, attributes: str) -> tuple[int, str, int]:
        """``(fast code, type, style)`` of a cell's attributes (few distinct ones: cached)."""
        kind, style = _style_and_type(attributes)
        code = _OTHER
        if kind == INLINE:
            code = _INLINE
        elif kind == SHARED:
            code = _SHARED
        elif kind == NUMBER and style not in self.values.styles.dates:
            code = _PLAIN_NUMBER
        self._kinds[attributes] = (code, kind, style)
        return code, kind, style

    def fast(self, chunk: str) -> bool:
        """Read a chunk of whole rows; False, keeping nothing, at the first shape it does not know."""
        # The hot loop of the whole extractor (one pass per cell): locals only, no calls when avoidable.
        values = self.values
        shared = values.shared
        columns = self._columns
        kinds = self._kinds
        escaped = "&" in chunk or "\r" in chunk
        lines: list[str] = []
        row: list[str] = []
        append = row.append
        last = size = 0
        for letters, attributes, raw, inline, row_end, other in _ROW_TOKENS.findall(chunk):
            if letters:
                column = columns.get(letters, 0)
                if column != last + 1:
                    if column <= last:
                        return False  # out of order, repeated or past XFD: the exact reader decides
                    row.extend([""] * (column - last - 1))
                last = column
                code, kind, style = kinds.get(attributes) or self._kind(attributes)
                if escaped:
                    raw, inline = xml_unescape(raw), xml_unescape(inline)
                if code == _INLINE:
                    append(inline)
                elif code == _SHARED and raw:
                    try:
                        append(shared[int(raw)])
                    except (ValueError, IndexError):
                        append("")
                elif code == _PLAIN_NUMBER and raw.isdigit() and raw.isascii() and raw[0] != "0":
                    append(raw)
                else:
                    append(values.text(kind, style, raw, inline))
            elif row_end:
                line = "\t".join(row).rstrip("\t")
                if line:
                    lines.append(line)
                    size += len(line) + 1
                    if self.size + size > self.budget:
                        break  # emit() truncates and reports; building more is wasted work
                row = []
                append = row.append
                last = 0
            elif other:
                return False
        self._keep(lines)
        return True

    def exact(self, element: etree._Element) -> None:
        """Read one ``<row>`` element; a cell without ``r`` follows the previous one (as in openpyxl)."""
        cells: dict[int, str] = {}
        column = 0
        for cell in element:
            if _local(cell.tag) != "c":
                continue
            reference = cell.get("r") or ""
            letters = reference.rstrip("0123456789")
            column = column_number(letters) if letters.isalpha() and letters.isupper() else column + 1
            if not 0 < column <= _MAX_COLUMN:
                continue
            raw: str | None = None
            inline: str | None = None
            for child in cell:
                name = _local(child.tag)
                if name == "v":
                    raw = child.text
                elif name == "is":
                    inline = string_item_text(child)
            style = cell.get("s") or "0"
            kind = cell.get("t") or NUMBER
            cells[column] = self.values.text(kind, int(style) if style.isdigit() else 0, raw, inline)
        line = _line(cells) if cells else ""
        if line:
            self._keep([line])


class SharedStrings:
    """Collects the shared-string table, up to ``budget`` characters (then ``full``)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.size = 0
        self.strings: list[str] = []

    def full(self) -> bool:
        return self.size > self.budget

    def fast(self, chunk: str) -> bool:
        """Read a chunk of whole ``<si>`` items; False, keeping nothing, at an unknown shape."""
        found: list[str] = []
        for item, text, empty, other in _STRING_TOKENS.findall(chunk):
            if item or empty:
                found.append(text)
            elif other:
                return False
        if "&" in chunk or "\r" in chunk:
            found = [xml_unescape(text) for text in found]
        self.strings.extend(found)
        # Each string costs its text and an object header (~50 bytes) of memory.
        self.size += sum(map(len, found)) + 50 * len(found)
        return True

    def exact(self, element: etree._Element) -> None:
        text = string_item_text(element)
        self.strings.append(text)
        self.size += len(text) + 50
