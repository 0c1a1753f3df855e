"""Each format, built at test time with a planted synthetic identifier: text and location."""

from __future__ import annotations

import bz2
import email.message
import gzip
import io
import tarfile
import zipfile

import docx
import openpyxl
import py7zr
import pytest
from fpdf import FPDF
from pptx import Presentation

from tests.extract.helpers import (
    TFN,
    TFN_DIGITS,
    all_text,
    locations_with,
    reasons,
    run,
    self_signed,
    text_at,
)


def _docx_bytes() -> bytes:
    document = docx.Document()
    document.add_paragraph(f"Body TFN {TFN}")
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 1).text = "Table ABN 51 824 753 556"
    section = document.sections[0]
    section.header.paragraphs[0].text = "Header OFFICIAL: Sensitive"
    section.footer.paragraphs[0].text = "Footer medicare 2123 45670 1"
    run_ = document.paragraphs[0].runs[0]
    document.add_comment(run_, text="Comment mentions passport PA1234567", author="Reviewer")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _with_tracked_change(data: bytes) -> bytes:
    """Add a tracked insertion and deletion to word/document.xml (python-docx cannot)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            content = source.read(item)
            if item.filename == "word/document.xml":
                change = (
                    '<w:p><w:ins w:id="1" w:author="a" w:date="2024-01-01T00:00:00Z"><w:r><w:t>'
                    "Inserted secret project KESTREL</w:t></w:r></w:ins>"
                    '<w:del w:id="2" w:author="a" w:date="2024-01-01T00:00:00Z"><w:r><w:delText>'
                    "Deleted DVA QX123456</w:delText></w:r></w:del></w:p>"
                )
                content = content.replace(b"<w:sectPr", change.encode() + b"<w:sectPr", 1)
            target.writestr(item, content)
    return out.getvalue()


def _xlsx_bytes() -> bytes:
    workbook = openpyxl.Workbook()
    first = workbook.active
    first.title = "Summary"
    first.append(["name", "count"])
    first.append(["clients", 2])
    hidden = workbook.create_sheet("Sheet2")
    hidden.append(["Name", "TFN"])
    hidden.append(["Jane Citizen", TFN])
    hidden.append(["Number typed as number", 123456782])
    hidden.sheet_state = "hidden"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_docx_body_table_header_footer_comment_and_tracked_changes() -> None:
    result = run(_with_tracked_change(_docx_bytes()), "report.docx")
    loc = "attachment[1]:report.docx"
    assert TFN in text_at(result, f"{loc}#body")
    assert "51 824 753 556" in text_at(result, f"{loc}#body")
    assert "OFFICIAL: Sensitive" in text_at(result, f"{loc}#header1")
    assert "2123 45670 1" in text_at(result, f"{loc}#footer1")
    assert "PA1234567" in text_at(result, f"{loc}#comments")
    assert "Inserted secret project KESTREL" in text_at(result, f"{loc}#body")
    assert "Deleted DVA QX123456" in text_at(result, f"{loc}#body")
    assert result.attachments[0].real_type.endswith("wordprocessingml.document")
    assert not result.findings


def test_xlsx_every_sheet_including_hidden_with_sheet_location() -> None:
    result = run(_xlsx_bytes(), "clients.xlsx")
    sheet2 = text_at(result, "attachment[1]:clients.xlsx#Sheet2")
    assert "Jane Citizen" in sheet2
    assert TFN in sheet2
    assert "123456782" in sheet2  # a number cell reads as typed, not "123456782.0"
    assert "clients" in text_at(result, "attachment[1]:clients.xlsx#Summary")


def test_pptx_slides_and_notes() -> None:
    presentation = Presentation()
    slide = presentation.slides.add_slide(presentation.slide_layouts[1])
    slide.shapes.title.text = "Quarterly numbers"
    slide.placeholders[1].text = f"Slide TFN {TFN}"
    slide.notes_slide.notes_text_frame.text = "Speaker notes: medicare 2123 45670 1"
    buffer = io.BytesIO()
    presentation.save(buffer)
    result = run(buffer.getvalue(), "deck.pptx")
    assert TFN in text_at(result, "attachment[1]:deck.pptx#slide1")
    assert "2123 45670 1" in text_at(result, "attachment[1]:deck.pptx#notes1")


def _pdf_bytes(text: str, title: str = "Synthetic report") -> bytes:
    pdf = FPDF()
    pdf.set_title(title)
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(text=text)
    return bytes(pdf.output())


def test_pdf_text_layer_and_metadata() -> None:
    result = run(_pdf_bytes(f"PDF TFN {TFN}", title="Client list KESTREL"), "a.pdf")
    assert TFN in text_at(result, "attachment[1]:a.pdf#page1")
    assert "Client list KESTREL" in text_at(result, "attachment[1]:a.pdf#metadata")


def test_odf_text_spreadsheet_and_presentation() -> None:
    from odf.draw import Frame, Page, TextBox
    from odf.opendocument import OpenDocumentPresentation, OpenDocumentSpreadsheet, OpenDocumentText
    from odf.style import MasterPage, PageLayout
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    text_doc = OpenDocumentText()
    text_doc.text.addElement(P(text=f"ODT TFN {TFN}"))
    sheet_doc = OpenDocumentSpreadsheet()
    table = Table(name="Staff")
    row = TableRow()
    cell = TableCell()
    cell.addElement(P(text=f"ODS TFN {TFN}"))
    row.addElement(cell)
    table.addElement(row)
    sheet_doc.spreadsheet.addElement(table)
    slides = OpenDocumentPresentation()
    layout = PageLayout(name="layout")
    slides.automaticstyles.addElement(layout)
    master = MasterPage(name="master", pagelayoutname=layout)
    slides.masterstyles.addElement(master)
    page = Page(name="Intro", masterpagename=master)
    frame = Frame(width="10cm", height="3cm", x="1cm", y="1cm")
    box = TextBox()
    box.addElement(P(text=f"ODP TFN {TFN}"))
    frame.addElement(box)
    page.addElement(frame)
    slides.presentation.addElement(page)

    for document, name, suffix in (
        (text_doc, "a.odt", "#body"),
        (sheet_doc, "a.ods", "#Staff"),
        (slides, "a.odp", "#Intro"),
    ):
        buffer = io.BytesIO()
        document.write(buffer)
        result = run(buffer.getvalue(), name)
        assert TFN in text_at(result, f"attachment[1]:{name}{suffix}"), name


def test_rtf() -> None:
    rtf = rb"{\rtf1\ansi\ansicpg1252{\fonttbl{\f0 Arial;}}\f0 RTF TFN 123 456 782 caf\'e9\par}"
    result = run(rtf, "memo.rtf")
    text = text_at(result, "attachment[1]:memo.rtf")
    assert TFN in text
    assert "café" in text


@pytest.mark.parametrize(
    ("name", "data", "charset"),
    [
        ("notes.txt", f"Plain TFN {TFN} café".encode("cp1252"), "windows-1252"),
        ("notes-undeclared.txt", f"Plain TFN {TFN} café naïve résumé".encode("latin-1"), None),
        ("list.csv", f"name,tfn\nJane,{TFN}\n".encode(), None),
        ("data.json", f'{{"tfn": "{TFN}"}}'.encode(), None),
        ("data.xml", f"<client><tfn>{TFN}</tfn></client>".encode(), None),
        (
            "invite.ics",
            f"BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:TFN {TFN}\nEND:VEVENT\nEND:VCALENDAR\n".encode(),
            None,
        ),
        ("card.vcf", f"BEGIN:VCARD\nVERSION:3.0\nFN:Jane\nNOTE:TFN {TFN}\nEND:VCARD\n".encode(), None),
        ("utf16.txt", f"UTF-16 TFN {TFN}".encode("utf-16"), None),
    ],
)
def test_text_formats_in_any_charset(name: str, data: bytes, charset: str | None) -> None:
    result = run(data, name, charset=charset)
    assert TFN in text_at(result, f"attachment[1]:{name}")
    if "café" in data.decode("latin-1", errors="ignore") or charset:
        assert "caf" in all_text(result)
        assert "\ufffd" not in all_text(result)


def test_html_as_rendered_text() -> None:
    html = (
        "<html><head><style>.x{}</style></head>"
        f"<body><p>HTML TFN {TFN}</p><script>var a=1</script></body></html>"
    )
    result = run(html.encode(), "page.html")
    text = text_at(result, "attachment[1]:page.html")
    assert TFN in text
    assert "var a" not in text


def test_zip_nested_xlsx_location_names_the_sheet() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("clients.xlsx", _xlsx_bytes())
        archive.writestr("readme.txt", "nothing here")
    result = run(buffer.getvalue(), "export.zip", location="attachment[2]:")
    assert "attachment[2]:export.zip/clients.xlsx#Sheet2" in locations_with(result, TFN)
    located = {a.location: a for a in result.attachments}
    assert located["attachment[2]:export.zip/clients.xlsx"].real_type.endswith("spreadsheetml.sheet")
    assert located["attachment[2]:export.zip"].real_type == "application/zip"


def test_7z_tar_gz_bz2_recursively() -> None:
    seven = io.BytesIO()
    with py7zr.SevenZipFile(seven, "w") as archive:
        archive.writestr(f"7z TFN {TFN}".encode(), "inner/a.txt")
    tar_buffer = io.BytesIO()
    with tarfile.open(fileobj=tar_buffer, mode="w:gz") as archive:
        payload = seven.getvalue()
        info = tarfile.TarInfo("bundle/archive.7z")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    result = run(tar_buffer.getvalue(), "backup.tar.gz")
    assert "attachment[1]:backup.tar.gz/backup.tar/bundle/archive.7z/inner/a.txt" in locations_with(
        result, TFN
    )

    compressed = bz2.compress(f"bz2 TFN {TFN}".encode())
    assert "attachment[1]:notes.txt.bz2/notes.txt" in locations_with(run(compressed, "notes.txt.bz2"), TFN)
    gz = gzip.compress(f"gz TFN {TFN}".encode())
    assert "attachment[1]:notes.txt.gz/notes.txt" in locations_with(run(gz, "notes.txt.gz"), TFN)


def test_eml_inside_zip_with_its_own_attachment() -> None:
    message = email.message.EmailMessage()
    message["Subject"] = "Forwarded client file"
    message["From"] = "a@example.gov.au"
    message["To"] = "b@example.com"
    message.set_content(f"Body TFN {TFN}")
    message.add_attachment(_xlsx_bytes(), maintype="application", subtype="octet-stream", filename="c.xlsx")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("fwd.eml", message.as_bytes())
    result = run(buffer.getvalue(), "mail.zip")
    found = locations_with(result, TFN)
    assert "attachment[1]:mail.zip/fwd.eml#body" in found
    assert "attachment[1]:mail.zip/fwd.eml/c.xlsx#Sheet2" in found
    assert "Forwarded client file" in text_at(result, "attachment[1]:mail.zip/fwd.eml#headers")


def test_png_by_ocr() -> None:
    import shutil

    from PIL import Image, ImageDraw, ImageFont

    from tests.support import skip_or_fail

    if shutil.which("tesseract") is None:
        skip_or_fail("tesseract not installed")
    image = Image.new("RGB", (900, 120), "white")
    ImageDraw.Draw(image).text((20, 30), f"TFN {TFN}", fill="black", font=ImageFont.load_default(size=48))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    result = run(buffer.getvalue(), "scan.png")
    assert TFN_DIGITS in text_at(result, "attachment[1]:scan.png").replace(" ", "")

    pdf = FPDF()
    pdf.add_page()
    pdf.image(io.BytesIO(buffer.getvalue()), x=10, y=10, w=180)
    scanned = run(bytes(pdf.output()), "scan.pdf")
    assert TFN_DIGITS in text_at(scanned, "attachment[1]:scan.pdf#page1#ocr").replace(" ", "")


def test_opaque_signed_smime_is_unwrapped() -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

    key, cert = self_signed()
    signed = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(f"Signed TFN {TFN}".encode())
        .add_signer(cert, key, hashes.SHA256())
        .sign(Encoding.DER, [])
    )
    result = run(signed, "smime.p7m", declared_type="application/pkcs7-mime")
    assert TFN in text_at(result, "attachment[1]:smime.p7m/content")
    assert not reasons(result, "ENCRYPTED")
