"""A worksheet cell's value as the text a person sees, the way openpyxl would have typed it.

The XML holds a cell's type (``t``), style (``s``) and raw value (``<v>`` or an
inline ``<is>``); openpyxl turned those into Python values which the gateway
then printed.  The same rules are kept here so that moving off openpyxl changes
speed, not text: numbers typed as numbers read as typed (``123456782``, not
``123456782.0``, so a TFN stored as a number is still found), dates as
``YYYY-MM-DD HH:MM:SS``, booleans as ``True``/``False``, formulas as their
last calculated value, shared strings resolved.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType

from openpyxl.utils.datetime import from_excel, from_ISO8601

# Cell types (the ``t`` attribute); a missing one means a number.
NUMBER = "n"
SHARED = "s"
INLINE = "inlineStr"
BOOLEAN = "b"
DATE_ISO = "d"

_ENTITY = re.compile(r"&(#[0-9]+|#x[0-9a-fA-F]+|lt|gt|amp|quot|apos);")
_NAMED = MappingProxyType({"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"})


def _entity(match: re.Match[str]) -> str:
    name = match.group(1)
    if not name.startswith("#"):
        return _NAMED[name]
    code = int(name[2:], 16) if name[1] in "xX" else int(name[1:])
    # Leave what no XML parser would have produced (NUL, surrogates, past U+10FFFF) as written.
    if code == 0 or 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
        return match.group(0)
    return chr(code)


def xml_unescape(text: str) -> str:
    """Text content as an XML parser reports it: line ends normalised, references replaced.

    Only the predefined entities and character references are replaced; any other
    ``&name;`` (a document may not declare entities the fast reader would expand)
    stays as written.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _ENTITY.sub(_entity, text) if "&" in text else text


def number_text(raw: str) -> str:
    """A numeric cell's value as typed: integral floats without ``.0``, others as Python prints them."""
    try:
        value: float | int = float(raw) if ("." in raw or "e" in raw or "E" in raw) else int(raw)
    except ValueError:
        return raw  # not a number after all: the text is still worth scanning
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class CellStyles:
    """Which cell-format indices (``s``) show numbers as dates or as durations."""

    dates: frozenset[int] = frozenset()
    durations: frozenset[int] = frozenset()
    epoch: datetime.datetime = datetime.datetime(1899, 12, 30)


@dataclass(frozen=True)
class CellValues:
    """Everything needed to turn a cell's raw value into text."""

    shared: Sequence[str]
    styles: CellStyles

    def shared_string(self, raw: str) -> str:
        """The shared string at index ``raw`` ("" for an index that points nowhere)."""
        try:
            return self.shared[int(raw)]
        except (ValueError, IndexError):
            return ""

    def date_text(self, raw: str, style: int) -> str:
        """A number shown with a date format, as openpyxl printed the datetime it made of it."""
        try:
            serial: float | int = float(raw) if ("." in raw or "e" in raw or "E" in raw) else int(raw)
            return str(from_excel(serial, self.styles.epoch, timedelta=style in self.styles.durations))
        except (OverflowError, ValueError):
            return "#VALUE!"

    def text(self, kind: str, style: int, raw: str | None, inline: str | None) -> str:
        """A cell's text from its type, style, ``<v>`` text and inline-string text (both unescaped)."""
        if kind == INLINE:
            return inline or ""
        if not raw:
            return ""
        if kind == NUMBER:
            return self.date_text(raw, style) if style in self.styles.dates else number_text(raw)
        if kind == SHARED:
            return self.shared_string(raw)
        if kind == BOOLEAN:
            try:
                return str(bool(int(raw)))
            except ValueError:
                return raw
        if kind == DATE_ISO:
            try:
                return str(from_ISO8601(raw))
            except ValueError:
                return raw
        return raw  # "str" (a formula's text result), "e" (an error such as #DIV/0!), or unknown
