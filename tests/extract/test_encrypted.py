"""Encrypted and protected content is reported ENCRYPTED (built at test time, plus the corpus)."""

from __future__ import annotations

import csv
import io
import zipfile

import docx
import msoffcrypto.format.ooxml
import py7zr
import pytest
import pyzipper
from fpdf import FPDF
from pypdf import PdfReader, PdfWriter

from tests.extract.helpers import TFN, findings_at, reasons, run, self_signed, text_at
from tests.support import SHARED


def _pdf(text: str) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(text=text)
    return bytes(pdf.output())


def _encrypt_pdf(data: bytes, user: str, owner: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user, owner_password=owner, algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_pdf_needing_a_password_is_encrypted_and_unread() -> None:
    result = run(_encrypt_pdf(_pdf(f"TFN {TFN}"), "secret", "owner"), "locked.pdf")
    assert findings_at(result, "ENCRYPTED", "attachment[1]:locked.pdf") == ["pdf:password"]
    assert not result.segments


def test_pdf_with_only_an_owner_password_is_read_and_flagged() -> None:
    result = run(_encrypt_pdf(_pdf(f"TFN {TFN}"), "", "owner"), "restricted.pdf")
    assert findings_at(result, "ENCRYPTED", "attachment[1]:restricted.pdf") == ["pdf:permissions"]
    assert next(f for f in result.findings if f.entity_type == "ENCRYPTED").attributes["scanned"] == "yes"
    assert TFN in text_at(result, "attachment[1]:restricted.pdf#page1")


def test_zip_with_aes_password_member() -> None:
    buffer = io.BytesIO()
    with pyzipper.AESZipFile(buffer, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES) as z:
        z.setpassword(b"pw")
        z.writestr("secret.txt", f"TFN {TFN}")
    with zipfile.ZipFile(buffer, "a") as z:  # a readable sibling is still read
        z.writestr("open.txt", f"open TFN {TFN}")
    result = run(buffer.getvalue(), "mixed.zip")
    assert findings_at(result, "ENCRYPTED", "attachment[1]:mixed.zip/secret.txt") == ["zip:password"]
    assert TFN in text_at(result, "attachment[1]:mixed.zip/open.txt")
    assert "attachment[1]:mixed.zip/secret.txt" not in {s.location for s in result.segments}


@pytest.mark.parametrize("header_encryption", [False, True])
def test_7z_with_password(header_encryption: bool) -> None:
    buffer = io.BytesIO()
    with py7zr.SevenZipFile(buffer, "w", password="pw", header_encryption=header_encryption) as archive:
        archive.writestr(f"TFN {TFN}".encode(), "secret.txt")
    result = run(buffer.getvalue(), "locked.7z")
    assert reasons(result, "ENCRYPTED") == ["7z:password"]
    assert not result.segments


def test_encrypted_office_document() -> None:
    document = docx.Document()
    document.add_paragraph(f"TFN {TFN}")
    plain = io.BytesIO()
    document.save(plain)
    plain.seek(0)
    locked = io.BytesIO()
    msoffcrypto.format.ooxml.OOXMLFile(plain).encrypt("pw", locked)
    result = run(locked.getvalue(), "locked.docx")
    assert findings_at(result, "ENCRYPTED", "attachment[1]:locked.docx") == ["office:password"]
    assert not reasons(result, "FILE_TYPE_MISMATCH")  # an encrypted .docx is an OLE file, as expected
    assert not result.segments


def test_smime_enveloped_data() -> None:
    from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

    _, cert = self_signed()
    enveloped = (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(f"TFN {TFN}".encode())
        .add_recipient(cert)  # type: ignore[arg-type]
        .encrypt(Encoding.DER, [])
    )
    result = run(enveloped, "smime.p7m", declared_type="application/pkcs7-mime")
    assert reasons(result, "ENCRYPTED") == ["smime:enveloped-data"]
    assert not result.segments


def test_pgp_armoured_message_and_pgp_encrypted_control_part() -> None:
    armour = b"-----BEGIN PGP MESSAGE-----\n\nhQEMA0x1c2Vy\n=abcd\n-----END PGP MESSAGE-----\n"
    assert reasons(run(armour, "msg.asc"), "ENCRYPTED") == ["pgp:message"]
    control = run(b"Version: 1\n", "", declared_type="application/pgp-encrypted")
    assert reasons(control, "ENCRYPTED") == ["pgp:message"]


def _corpus_encrypted() -> list[str]:
    table = SHARED / "corpora" / "attachments" / "ATTACHMENTS.tsv"
    if not table.exists():
        return []
    with table.open(newline="") as handle:
        return [row["file"] for row in csv.DictReader(handle, delimiter="\t") if row["encrypted"] == "yes"]


@pytest.mark.parametrize("name", _corpus_encrypted() or ["(shared corpora absent)"])
def test_corpus_encrypted_files_are_flagged(name: str) -> None:
    from tests.support import shared_dir

    path = shared_dir("corpora", "attachments") / name
    if not path.is_file():
        pytest.skip(f"shared corpora absent: {path}")
    result = run(path.read_bytes(), path.name)
    flagged = reasons(result, "ENCRYPTED") + reasons(result, "UNSCANNABLE")
    assert flagged, name
    readable = [f for f in result.findings if f.attributes.get("scanned") == "yes"]
    # Archives and wrapper PDFs may hold readable siblings of the encrypted member; nothing else
    # that needs a password may yield text beyond its metadata.
    if not readable and path.suffix.lower() not in (".zip", ".pdf"):
        assert all(s.location.endswith("#metadata") for s in result.segments), name
