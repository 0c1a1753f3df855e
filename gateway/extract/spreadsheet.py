"""Spreadsheets: XLSX/XLSM (streamed XML), XLS (xlrd), XLSB (best effort).

Every sheet is read, hidden and very hidden ones included (hiding a sheet is a
common way to send more than the sender meant to); each becomes a segment at
``<location>#<sheet name>``, one row per line, cells separated by tabs.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Iterable

import xlrd
from lxml import etree

from gateway.extract.context import Context, Part
from gateway.extract.ooxml import package_extras
from gateway.extract.xlsxbook import BookLayout, SheetRef, read_layout
from gateway.extract.xlsxcells import CellValues
from gateway.extract.xlsxsheet import ROWS, SHARED_STRINGS, SharedStrings, SheetRows
from gateway.extract.xmlrecords import read_records
from gateway.extract.xmltext import plain_xml_text
from gateway.extract.zipsafe import open_zip, read_named, stream_member

_COMMENTS = re.compile(r"^xl/(?:comments\d*|threadedComments/[^/]+)\.xml$")
_CHECK_EVERY_ROWS = 500
# XLSB strings are length-prefixed UTF-16LE; a run of printable UTF-16 is a fair approximation.
_UTF16_RUN = re.compile(rb"(?:[\x20-\x7e\xa0-\xff]\x00|[\x00-\xff][\x01-\xd7\xe0-\xff]){3,}")


def _cell(value: object) -> str:
    # Numbers typed into a sheet come back as floats (123456782.0); show them as a person sees them.
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return str(value)


def _rows_text(rows: Iterable[Iterable[object]], ctx: Context) -> str:
    lines: list[str] = []
    size = 0
    for number, row in enumerate(rows):
        if number % _CHECK_EVERY_ROWS == 0:
            ctx.check_time()
        line = "\t".join(_cell(value) for value in row).rstrip("\t")
        if line:
            lines.append(line)
            size += len(line)
            if size > ctx.budget.remaining:
                break  # emit() will truncate and report; no point building more
    return "\n".join(lines)


def extract_xlsx(part: Part, ctx: Context) -> None:
    """Cell values of every worksheet (formulas as last calculated), comments and metadata.

    Sheets are streamed (see :mod:`gateway.extract.xmlrecords`), so a sheet's XML
    may exceed ``max_part_bytes``; the text budget, the expansion ratio and the
    part's deadline bound it instead.  A sheet whose XML is corrupt or truncated
    keeps the text read before the fault and is reported ``UNSCANNABLE``; the
    other sheets are still read.
    """
    with open_zip(part.data) as archive:
        layout = read_layout(archive, ctx)
        values = CellValues(_shared_strings(archive, layout, part, ctx), layout.styles)
        if len(layout.sheets) > ctx.limits.max_pages:
            ctx.finding_limit(part.location, "max_pages")
        for sheet in layout.sheets[: ctx.limits.max_pages]:
            _sheet(archive, sheet, values, f"{part.location}#{sheet.label}", ctx)
        for name in filter(_COMMENTS.match, archive.namelist()):
            data = read_named(archive, name, ctx) or b""
            ctx.emit(f"{part.location}#comments", plain_xml_text(data, ctx))
        package_extras(archive, part, ctx)


# Why a sheet could not be read to its end, by exception type: the ZIP member or its XML is damaged.
_DAMAGE = (etree.XMLSyntaxError, zipfile.BadZipFile, zlib.error, EOFError, UnicodeDecodeError)


def _sheet(
    archive: zipfile.ZipFile, sheet: SheetRef, values: CellValues, location: str, ctx: Context
) -> None:
    rows = SheetRows(values, budget=ctx.budget.remaining)
    try:
        read_records(stream_member(archive, archive.getinfo(sheet.part), ctx), ROWS, rows, ctx)
    except _DAMAGE as exc:
        ctx.emit(location, rows.text())  # what was read before the fault is still scanned
        ctx.finding_unscannable(location, f"parser_error:{type(exc).__name__}")
        return
    ctx.emit(location, rows.text())


def _shared_strings(archive: zipfile.ZipFile, layout: BookLayout, part: Part, ctx: Context) -> list[str]:
    """The shared-string table, at most the message's text budget of it (else reported)."""
    if layout.shared_strings is None:
        return []
    table = SharedStrings(budget=ctx.limits.max_text_bytes)
    info = archive.getinfo(layout.shared_strings)
    try:
        read_records(stream_member(archive, info, ctx), SHARED_STRINGS, table, ctx)
    except _DAMAGE as exc:
        # Strings before the fault still resolve; cells pointing past them read as empty.
        location = f"{part.location}#sharedStrings"
        ctx.finding_unscannable(location, f"parser_error:{type(exc).__name__}")
    if table.full():
        # Cells pointing past what was kept read as empty: say so rather than scan in silence.
        ctx.finding_limit(part.location, "max_text_bytes")
    return table.strings


def extract_xlsb(part: Part, ctx: Context) -> None:
    """Best effort for binary workbooks: the shared-string table's UTF-16 text."""
    with open_zip(part.data) as archive:
        data = read_named(archive, "xl/sharedStrings.bin", ctx) or b""
        strings = [m.decode("utf-16-le", errors="ignore") for m in _UTF16_RUN.findall(data)]
        ctx.emit(f"{part.location}#sharedStrings", "\n".join(strings))
        package_extras(archive, part, ctx)


def extract_xls(part: Part, ctx: Context) -> None:
    """Legacy Excel 97-2003 workbooks: every sheet, hidden ones included."""
    book = xlrd.open_workbook(file_contents=part.data, on_demand=True, logfile=io.StringIO())
    try:
        names = book.sheet_names()
        if len(names) > ctx.limits.max_pages:
            ctx.finding_limit(part.location, "max_pages")
        for index, name in enumerate(names[: ctx.limits.max_pages]):
            sheet = book.sheet_by_index(index)
            rows = (sheet.row_values(r) for r in range(sheet.nrows))
            ctx.emit(f"{part.location}#{name}", _rows_text(rows, ctx))
            book.unload_sheet(index)
    finally:
        book.release_resources()
