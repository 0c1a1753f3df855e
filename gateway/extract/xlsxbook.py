"""The layout of an XLSX package: its sheets in workbook order, shared strings, styles, date system.

Read from the small structural parts (``_rels/.rels``, ``xl/workbook.xml`` and
its relationships, ``xl/styles.xml``) with a parser that expands no entities.
Worksheet parts that the workbook does not list are read too, under their part
name: a sheet dropped from ``workbook.xml`` is invisible in Excel, yet its cells
still travel with the file.
"""

from __future__ import annotations

import datetime
import posixpath
import re
import zipfile
from dataclasses import dataclass

from lxml import etree
from openpyxl.styles.numbers import builtin_format_code, is_date_format, is_timedelta_format

from gateway.extract.context import Context
from gateway.extract.xlsxcells import CellStyles
from gateway.extract.zipsafe import read_named

_WINDOWS_EPOCH = datetime.datetime(1899, 12, 30)
_MAC_EPOCH = datetime.datetime(1904, 1, 1)
# Parts whose cells a workbook can hold: worksheets, Excel 4 macro sheets and dialog sheets.
_CELL_PART = re.compile(r"^xl/(?:worksheets|macrosheets|dialogsheets)/[^/]+\.xml$")
_CELL_RELATIONSHIPS = ("/worksheet", "/macrosheet", "/dialogsheet")


@dataclass(frozen=True)
class SheetRef:
    """One sheet to read: its label in locations and its part name in the package."""

    label: str
    part: str


@dataclass(frozen=True)
class BookLayout:
    """Where an XLSX package keeps what the spreadsheet reader needs."""

    sheets: tuple[SheetRef, ...]
    shared_strings: str | None
    styles: CellStyles


_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, recover=True
)


def _tree(archive: zipfile.ZipFile, name: str, ctx: Context) -> etree._Element | None:
    data = read_named(archive, name, ctx)
    if not data:
        return None
    try:
        return etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError:
        return None


def _local(tag: object) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _attribute(element: etree._Element, local_name: str) -> str:
    """An attribute by local name, whatever namespace (transitional or strict) it is in."""
    return next((str(v) for k, v in element.attrib.items() if _local(k) == local_name), "")


def _relationships(archive: zipfile.ZipFile, source: str, ctx: Context) -> dict[str, tuple[str, str]]:
    """``Id -> (type, part name)`` for the internal relationships of part ``source``."""
    folder, base = posixpath.split(source)
    root = _tree(archive, posixpath.join(folder, "_rels", f"{base}.rels"), ctx)
    found: dict[str, tuple[str, str]] = {}
    for element in root.iter() if root is not None else ():
        if _local(element.tag) != "Relationship" or element.get("TargetMode") == "External":
            continue
        target = element.get("Target") or ""
        name = target.lstrip("/") if target.startswith("/") else posixpath.join(folder, target)
        found[element.get("Id") or ""] = (element.get("Type") or "", posixpath.normpath(name))
    return found


def _main_part(archive: zipfile.ZipFile, ctx: Context) -> str:
    for kind, name in _relationships(archive, "", ctx).values():
        if kind.endswith("/officeDocument"):
            return name
    return "xl/workbook.xml"


def _styles(archive: zipfile.ZipFile, name: str | None, date1904: bool, ctx: Context) -> CellStyles:
    """Cell formats that show numbers as dates or durations (as openpyxl classifies them)."""
    epoch = _MAC_EPOCH if date1904 else _WINDOWS_EPOCH
    root = _tree(archive, name, ctx) if name else None
    if root is None:
        return CellStyles(epoch=epoch)
    custom = {
        element.get("numFmtId"): element.get("formatCode")
        for element in root.iter()
        if _local(element.tag) == "numFmt"
    }
    dates: set[int] = set()
    durations: set[int] = set()
    xfs = next((e for e in root if _local(e.tag) == "cellXfs"), None)
    for index, xf in enumerate(e for e in (xfs if xfs is not None else ()) if _local(e.tag) == "xf"):
        number_format = xf.get("numFmtId") or "0"
        code = custom.get(number_format)
        if code is None and number_format.isdigit():
            code = builtin_format_code(int(number_format))
        if is_date_format(code):
            dates.add(index)
        if is_timedelta_format(code):
            durations.add(index)
    return CellStyles(dates=frozenset(dates), durations=frozenset(durations), epoch=epoch)


def read_layout(archive: zipfile.ZipFile, ctx: Context) -> BookLayout:
    """The sheets (listed ones in workbook order, then unlisted ones), shared strings and styles."""
    main = _main_part(archive, ctx)
    relationships = _relationships(archive, main, ctx)
    root = _tree(archive, main, ctx)
    sheets: list[SheetRef] = []
    date1904 = False
    for element in root.iter() if root is not None else ():
        name = _local(element.tag)
        if name == "workbookPr":
            date1904 = (element.get("date1904") or "").lower() in ("1", "true")
        elif name == "sheet":
            kind, part = relationships.get(_attribute(element, "id"), ("", ""))
            if kind.endswith(_CELL_RELATIONSHIPS):
                sheets.append(SheetRef(element.get("name") or part, part))
    members = set(archive.namelist())
    listed = {sheet.part for sheet in sheets}
    sheets = [sheet for sheet in sheets if sheet.part in members]
    sheets += [SheetRef(name, name) for name in sorted(members - listed) if _CELL_PART.match(name)]
    by_type = {kind.rpartition("/")[2]: part for kind, part in relationships.values()}
    shared = by_type.get("sharedStrings", "xl/sharedStrings.xml")
    return BookLayout(
        sheets=tuple(sheets),
        shared_strings=shared if shared in members else None,
        styles=_styles(archive, by_type.get("styles", "xl/styles.xml"), date1904, ctx),
    )
