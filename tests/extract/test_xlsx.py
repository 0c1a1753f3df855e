"""XLSX: the streaming reader against openpyxl's values, and against hostile workbooks.

Reference text is what the gateway printed when it read workbooks with
openpyxl (read-only, cached formula values): one line per row, cells joined by
tabs, trailing empty cells dropped, empty rows skipped, integral floats without
``.0``.  Every workbook is read twice: by the fast reader, and by the exact
(lxml) reader it falls back to, forced here by a comment before the first row.
"""

from __future__ import annotations

import datetime
import io
import re
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest
from openpyxl.cell.rich_text import CellRichText, TextBlock
from openpyxl.cell.text import InlineFont

from gateway.extract.xlsxsheet import column_number
from gateway.model import Extraction
from tests.extract.helpers import TFN, findings_at, reasons, run, text_at
from tests.support import shared_dir

LOC = "attachment[1]:book.xlsx"


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return str(value)


def openpyxl_text(data: bytes) -> dict[str, str]:
    """Sheet title → text, as the openpyxl-based reader produced it."""
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
    try:
        sheets = {}
        for sheet in book.worksheets:
            lines = (
                "\t".join(_cell(v) for v in row).rstrip("\t") for row in sheet.iter_rows(values_only=True)
            )
            sheets[sheet.title] = "\n".join(line for line in lines if line)
        return sheets
    finally:
        book.close()


def sheets_text(result: Extraction, location: str = LOC) -> dict[str, str]:
    """Sheet label → text of the new reader (comments and metadata left out)."""
    found: dict[str, list[str]] = {}
    for segment in result.segments:
        base, _, label = segment.location.partition("#")
        if base == location and label not in ("comments", "metadata"):
            found.setdefault(label, []).append(segment.text)
    return {label: "\n".join(texts) for label, texts in found.items()}


def saved(book: openpyxl.Workbook) -> bytes:
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def rewrite(data: bytes, edit: Callable[[str, bytes], bytes]) -> bytes:
    """The package with every member passed through ``edit(name, content)``."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for item in source.infolist():
            target.writestr(item.filename, edit(item.filename, source.read(item)))
    return out.getvalue()


SST_TYPE = b"application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
SST_REL = b"http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings"


def to_shared_strings(data: bytes) -> bytes:
    """The workbook with its inline strings moved to a shared-string table, as Excel stores them.

    openpyxl (3.1) writes every string inline; Excel and most other writers share them.
    """
    strings: list[bytes] = []

    def share(match: re.Match[bytes]) -> bytes:
        strings.append(match.group(3))
        return b'<c %st="s"%s><v>%d</v></c>' % (match.group(1), match.group(2), len(strings) - 1)

    def edit(name: str, content: bytes) -> bytes:
        if name.startswith("xl/worksheets/"):
            return re.sub(rb'<c ([^>]*?)t="inlineStr"([^>]*)><is>(.*?)</is></c>', share, content)
        return content

    def add_table(name: str, content: bytes) -> bytes:
        if name == "[Content_Types].xml":
            override = b'<Override PartName="/xl/sharedStrings.xml" ContentType="%s"/>' % SST_TYPE
            return content.replace(b"</Types>", override + b"</Types>")
        if name == "xl/_rels/workbook.xml.rels":
            relationship = b'<Relationship Id="rIdSST" Type="%s" Target="sharedStrings.xml"/>' % SST_REL
            return content.replace(b"</Relationships>", relationship + b"</Relationships>")
        return content

    shared = rewrite(rewrite(data, edit), add_table)
    table = b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="%d">' % len(
        strings
    )
    table += b"".join(b"<si>%s</si>" % item for item in strings) + b"</sst>"
    out = io.BytesIO(shared)
    with zipfile.ZipFile(out, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/sharedStrings.xml", table)
    return out.getvalue()


def force_exact(data: bytes) -> bytes:
    """The same workbook with a comment before the first row of every sheet and string item.

    The fast reader refuses anything it does not know, so this sends every sheet
    (and the shared strings) to the exact reader without changing any value.
    """

    def edit(name: str, content: bytes) -> bytes:
        if name.startswith("xl/worksheets/"):
            return content.replace(b"<sheetData>", b"<sheetData><!-- exact -->", 1)
        if name == "xl/sharedStrings.xml":
            return re.sub(rb"(<sst\b[^>]*>)", rb"\1<!-- exact -->", content, count=1)
        return content

    return rewrite(data, edit)


def with_cached_formula_values(data: bytes) -> bytes:
    """openpyxl writes formulas without results; add the <v> Excel would have cached."""
    cached = {b"B1": b"<v>123456782</v>", b"B2": b"<v>Jane Citizen</v>", b"B3": b"<v>#DIV/0!</v>"}

    def edit(name: str, content: bytes) -> bytes:
        if not name.startswith("xl/worksheets/"):
            return content
        for ref, value in cached.items():
            content = re.sub(
                rb'(<c r="' + ref + rb'"[^>]*>)(<f>[^<]*</f>)(<v\s*/>|<v></v>)?',
                lambda m, v=value: m.group(1) + m.group(2) + v,  # type: ignore[misc]
                content,
            )
        # Formula results are typed by the cell: a string result is t="str", an error t="e".
        content = content.replace(b'<c r="B2">', b'<c r="B2" t="str">').replace(
            b'<c r="B3">', b'<c r="B3" t="e">'
        )
        return content

    return rewrite(data, edit)


def varied_workbook() -> bytes:
    """Every value type openpyxl reads, in visible, hidden and very hidden sheets."""
    book = openpyxl.Workbook()
    first = book.active
    first.title = "Clients"
    first.append(["Name", "TFN typed as number", "Balance", "Active", "Born", "Note"])
    first.append(["Jane Citizen", 123456782, 1234.5, True, datetime.datetime(1980, 5, 17), "naïve café 東京"])
    first.append(["Float integral", 123456782.0, 0.1, False, datetime.date(2001, 2, 3), "tab\tinside"])
    first.append(["Big numbers", 1e20, -3.25e-7, None, datetime.time(13, 45, 30), "<&> \"quoted\" 'apos'"])
    first.append([])  # an empty row
    first["A7"] = "after a gap"
    first["D7"] = "column D"  # empty cells between
    first["F7"] = 0
    first["A8"] = "#N/A"  # openpyxl stores known error codes as errors
    first["B8"] = datetime.timedelta(hours=30, minutes=15)
    first["C8"] = "  leading and trailing spaces  "
    first["D8"] = "multi\nline"
    rich = CellRichText("plain then ", TextBlock(InlineFont(b=True), "bold"), " end")
    first["A9"] = rich
    hidden = book.create_sheet("Hidden")
    hidden.sheet_state = "hidden"
    hidden.append(["secret TFN", TFN])
    very = book.create_sheet("Very hidden")
    very.sheet_state = "veryHidden"
    very["C3"] = "far corner"
    very["AA10"] = "column AA"
    formulas = book.create_sheet("Formulas")
    formulas["A1"] = 123456781
    formulas["B1"] = "=A1+1"
    formulas["B2"] = '="Jane "&"Citizen"'
    formulas["B3"] = "=1/0"
    book.create_sheet("Empty")
    return with_cached_formula_values(saved(book))


def inline_workbook(rows: int = 50) -> bytes:
    """A write-only workbook: strings inline (t="inlineStr"), as the benchmark's records."""
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Records")
    sheet.append(["ID", "Name", "TFN", "Amount"])
    for i in range(rows):
        sheet.append([f"CL-{i}", f"Person {i}", TFN, i * 1.5 if i % 2 else i])
    return saved(book)


@pytest.mark.parametrize("reader", ["fast", "exact"])
@pytest.mark.parametrize("strings", ["inline", "shared"])
@pytest.mark.parametrize("make", [varied_workbook, inline_workbook], ids=["varied", "records"])
def test_text_equals_openpyxl_values(make: Callable[[], bytes], strings: str, reader: str) -> None:
    data = to_shared_strings(make()) if strings == "shared" else make()
    if strings == "shared":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert b't="s"' in archive.read("xl/worksheets/sheet1.xml")
    expected = openpyxl_text(data)
    result = run(force_exact(data) if reader == "exact" else data, "book.xlsx")
    assert sheets_text(result) == {title: text for title, text in expected.items() if text}
    assert not result.findings


def test_values_read_as_a_person_sees_them() -> None:
    result = run(varied_workbook(), "book.xlsx")
    clients = text_at(result, f"{LOC}#Clients")
    assert "Jane Citizen\t123456782\t1234.5\tTrue\t1980-05-17 00:00:00\tnaïve café 東京" in clients
    assert "Float integral\t123456782\t0.1\tFalse" in clients
    assert "after a gap\t\t\tcolumn D\t\t0" in clients
    assert "plain then bold end" in clients
    assert TFN in text_at(result, f"{LOC}#Hidden")
    assert "far corner" in text_at(result, f"{LOC}#Very hidden")
    assert text_at(result, f"{LOC}#Formulas").splitlines() == [
        "123456781\t123456782",
        "\tJane Citizen",
        "\t#DIV/0!",
    ]


def test_date1904_workbook() -> None:
    book = openpyxl.Workbook()
    book.epoch = openpyxl.utils.datetime.CALENDAR_MAC_1904
    book.active.append([datetime.datetime(2020, 1, 2, 3, 4, 5)])
    data = saved(book)
    assert sheets_text(run(data, "book.xlsx")) == openpyxl_text(data)


def test_column_numbers() -> None:
    assert [column_number(c) for c in ("A", "Z", "AA", "AZ", "ZZ", "AAA", "XFD")] == [
        1,
        26,
        27,
        52,
        702,
        703,
        16384,
    ]


def test_forged_dimension_does_not_hide_rows() -> None:
    book = openpyxl.Workbook()
    for i in range(1, 6):
        book.active.append([f"row {i}", TFN if i == 5 else ""])

    def forge(name: str, content: bytes) -> bytes:
        return re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:A1"', content)

    result = run(rewrite(saved(book), forge), "book.xlsx")
    assert TFN in text_at(result, f"{LOC}#Sheet")  # openpyxl stopped at the forged A1


def test_sheet_missing_from_the_workbook_is_still_read() -> None:
    book = openpyxl.Workbook()
    book.active.append(["listed"])
    book.create_sheet("Dropped").append(["unlisted", TFN])

    def drop(name: str, content: bytes) -> bytes:
        if name == "xl/workbook.xml":
            return re.sub(rb'<sheet [^>]*name="Dropped"[^>]*/>', b"", content)
        return content

    result = run(rewrite(saved(book), drop), "book.xlsx")
    assert "listed" in text_at(result, f"{LOC}#Sheet")
    assert TFN in text_at(result, f"{LOC}#xl/worksheets/sheet2.xml")


def test_sheet_xml_larger_than_max_part_bytes_is_streamed() -> None:
    data = inline_workbook(rows=20_000)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        sheet_size = archive.getinfo("xl/worksheets/sheet1.xml").file_size
    limit = len(data) + 1024
    assert sheet_size > limit  # the sheet alone would break max_part_bytes if read whole
    result = run(data, "book.xlsx", max_part_bytes=limit)
    assert not result.findings
    assert "CL-19999\tPerson 19999" in text_at(result, f"{LOC}#Records")


def test_text_limit_truncates_and_reports_max_text_bytes() -> None:
    result = run(inline_workbook(rows=5_000), "book.xlsx", max_text_bytes=10_000)
    assert findings_at(result, "UNSCANNABLE", LOC) == ["limit:max_text_bytes"]
    text = text_at(result, f"{LOC}#Records")
    assert 0 < len(text.encode()) <= 10_000
    assert "CL-0\tPerson 0" in text


def test_shared_strings_beyond_text_limit_are_reported() -> None:
    book = openpyxl.Workbook()
    for i in range(2_000):
        book.active.append([f"unique shared string number {i}"])
    result = run(saved(book), "book.xlsx", max_text_bytes=20_000)
    assert "limit:max_text_bytes" in findings_at(result, "UNSCANNABLE", LOC)


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]>"
)


def _laughing(member: str) -> bytes:
    """A workbook whose ``member`` declares a billion-laughs DTD and uses it in the first sheet's A1.

    A second sheet holds a TFN typed as a number, which needs neither part to read.
    """
    book = openpyxl.Workbook()
    book.active["A1"] = "PLACEHOLDER"
    book.active["A2"] = "visible"
    book.create_sheet("Other")["A1"] = 123456782

    def bomb(name: str, content: bytes) -> bytes:
        if name == member:
            content = BILLION_LAUGHS + re.sub(rb"^<\?xml[^>]*\?>", b"", content)
            content = content.replace(b"PLACEHOLDER", b"&lol9;")
        return content

    plain = saved(book)  # strings inline: PLACEHOLDER is in the sheet
    data = rewrite(to_shared_strings(plain) if member == "xl/sharedStrings.xml" else plain, bomb)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert b"&lol9;" in archive.read(member)
    return data


@pytest.mark.parametrize(
    ("member", "location"),
    [("xl/worksheets/sheet1.xml", f"{LOC}#Sheet"), ("xl/sharedStrings.xml", f"{LOC}#sharedStrings")],
)
def test_entity_expansion_is_refused_and_reported(member: str, location: str) -> None:
    started = time.monotonic()
    result = run(_laughing(member), "book.xlsx")
    assert time.monotonic() - started < 10
    assert "lollol" not in "".join(s.text for s in result.segments)
    # libxml2 refuses the amplification outright: the part is reported, not expanded.
    assert findings_at(result, "UNSCANNABLE", location) == ["parser_error:XMLSyntaxError"]
    assert "123456782" in text_at(result, f"{LOC}#Other")


def test_zip_bomb_sheet_stops_at_ratio() -> None:
    book = openpyxl.Workbook()
    book.active.append(["x"])

    def pad(name: str, content: bytes) -> bytes:
        if name == "xl/worksheets/sheet1.xml":  # whitespace between rows: legal, and compresses ~1000:1
            return content.replace(b"</row>", b"</row>" + b" " * (64 * 1024 * 1024), 1)
        return content

    data = rewrite(saved(book), pad)
    assert len(data) < 1_000_000
    result = run(data, "book.xlsx")
    assert findings_at(result, "UNSCANNABLE", LOC) == ["limit:max_ratio"]


def test_truncated_sheet_keeps_earlier_rows_and_other_sheets() -> None:
    book = openpyxl.Workbook()
    for i in range(200):
        book.active.append([f"row {i}", TFN])
    book.create_sheet("Intact").append(["intact sheet", "AU passport PA1234567"])

    def truncate(name: str, content: bytes) -> bytes:
        if name == "xl/worksheets/sheet1.xml":
            return content[: content.index(b'<row r="150"') + 20]
        return content

    result = run(rewrite(saved(book), truncate), "book.xlsx")
    first = text_at(result, f"{LOC}#Sheet")
    assert "row 0\t" in first and "row 148\t" in first
    assert findings_at(result, "UNSCANNABLE", f"{LOC}#Sheet") == ["parser_error:XMLSyntaxError"]
    assert "PA1234567" in text_at(result, f"{LOC}#Intact")


def test_corrupt_zip_member_of_one_sheet_is_reported_for_that_sheet() -> None:
    book = openpyxl.Workbook()
    book.active.append(["first sheet", TFN])
    book.create_sheet("Second").append(["second sheet"])
    data = bytearray(saved(book))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("xl/worksheets/sheet1.xml")
    # Flip bytes inside the member's compressed data (after its local header): a CRC or inflate error.
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for offset in range(start + 5, start + info.compress_size - 2):
        data[offset] ^= 0x5A
    result = run(bytes(data), "book.xlsx")
    assert findings_at(result, "UNSCANNABLE", f"{LOC}#Sheet")[0].startswith("parser_error:")
    assert "second sheet" in text_at(result, f"{LOC}#Second")


def test_corpus_workbooks_match_openpyxl() -> None:
    folder = shared_dir("corpora", "attachments", "tika")
    compared = 0
    for path in sorted(folder.glob("*.xls[xm]")):
        data = path.read_bytes()
        try:
            expected = openpyxl_text(data)
        except Exception:  # encrypted or not a package openpyxl reads: nothing to compare with
            continue
        result = run(data, path.name, location="attachment[1]:")
        found = sheets_text(result, f"attachment[1]:{path.name}")
        assert {k: v for k, v in found.items() if k in expected} == {
            k: v for k, v in expected.items() if v
        }, path
        compared += 1
    assert compared >= 5


def _corpus(name: str) -> Path:
    return shared_dir("corpora", "attachments", "tika") / name


def test_corpus_strict_ooxml_workbook_is_read() -> None:
    result = run(_corpus("testEXCEL.strict.xlsx").read_bytes(), "strict.xlsx")
    assert sheets_text(result, "attachment[1]:strict.xlsx")
    assert not reasons(result, "UNSCANNABLE")


def test_fast_reader_takes_what_common_writers_produce_and_refuses_the_rest() -> None:
    from gateway.extract.xlsxcells import CellStyles, CellValues
    from gateway.extract.xlsxsheet import SheetRows

    values = CellValues(["Jane Citizen"], CellStyles(dates=frozenset({1})))
    excel = (
        '<row r="1" spans="1:5" x14ac:dyDescent="0.25"><c r="A1" t="s"><v>0</v></c>'
        '<c r="B1" s="1"><v>29358</v></c><c r="C1"><f>1+1</f><v>2</v></c>'
        '<c r="E1" s="2" t="inlineStr"><is><t xml:space="preserve"> x &amp; y </t></is></c></row>\n'
        '<row r="2"><c r="A2" s="3"/></row>'
    )
    rows = SheetRows(values, budget=1000)
    assert rows.fast(excel)
    assert rows.text() == "Jane Citizen\t1980-05-17 00:00:00\t2\t\t x & y "
    for unknown in (
        '<row r="1"><!-- note --><c r="A1"><v>1</v></c></row>',
        '<row r="1"><x:c r="A1"><x:v>1</x:v></x:c></row>',
        '<row r="1"><c r="A1" t="inlineStr"><is><r><t>rich</t></r></is></c></row>',
        '<row r="1"><c r="B1"><v>1</v></c><c r="A1"><v>2</v></c></row>',
    ):
        refused = SheetRows(values, budget=1000)
        assert not refused.fast(unknown) and refused.text() == "", unknown


def test_corrupt_shared_strings_are_reported_and_the_sheet_still_read() -> None:
    book = openpyxl.Workbook()
    book.active.append(["first string", TFN, "third string"])

    def corrupt(name: str, content: bytes) -> bytes:
        if name == "xl/sharedStrings.xml":
            return content.replace(b"<si><t>third string", b"<si><t>third <broken string")
        return content

    result = run(rewrite(to_shared_strings(saved(book)), corrupt), "book.xlsx")
    assert findings_at(result, "UNSCANNABLE", f"{LOC}#sharedStrings") == ["parser_error:XMLSyntaxError"]
    assert text_at(result, f"{LOC}#Sheet").startswith(f"first string\t{TFN}")
