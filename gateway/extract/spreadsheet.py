"""Spreadsheets: XLSX/XLSM (openpyxl), XLS (xlrd), XLSB (best effort).

Every sheet is read, hidden and very hidden ones included (hiding a sheet is a
common way to send more than the sender meant to); each becomes a segment at
``<location>#<sheet name>``, one row per line, cells separated by tabs.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable

import openpyxl
import xlrd

from gateway.extract.context import Context, Part
from gateway.extract.ooxml import package_extras
from gateway.extract.xmltext import plain_xml_text
from gateway.extract.zipsafe import check_member, open_zip, read_named

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
    """Cell values of every worksheet (formulas as last calculated), comments and metadata."""
    with open_zip(part.data) as archive:
        for info in archive.infolist():
            check_member(info, ctx)  # openpyxl reads members whole: vet their sizes first
        workbook = openpyxl.load_workbook(
            io.BytesIO(part.data), read_only=True, data_only=True, keep_links=False
        )
        try:
            sheets = workbook.worksheets
            if len(sheets) > ctx.limits.max_pages:
                ctx.finding_limit(part.location, "max_pages")
            for sheet in sheets[: ctx.limits.max_pages]:
                if not hasattr(sheet, "iter_rows"):
                    continue  # chartsheets hold no cells
                ctx.emit(f"{part.location}#{sheet.title}", _rows_text(sheet.iter_rows(values_only=True), ctx))
        finally:
            workbook.close()
        for name in filter(_COMMENTS.match, archive.namelist()):
            data = read_named(archive, name, ctx) or b""
            ctx.emit(f"{part.location}#comments", plain_xml_text(data, ctx))
        package_extras(archive, part, ctx)


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
