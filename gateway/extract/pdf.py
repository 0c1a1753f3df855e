"""PDF: text layer per page, metadata, form fields, annotations, embedded files, OCR of scans.

Encryption: a PDF that opens with the empty password (owner password only,
permissions restricted) is still read, and reported ``ENCRYPTED`` with
``scanned=yes``; one that needs a user password, or uses an encryption pypdf
cannot open (Microsoft IRM/RMS wrappers), is ``ENCRYPTED`` and unread.
Pages without a text layer but with images are OCR'd (scanned documents).
"""

from __future__ import annotations

import io
from typing import Any

from pypdf import PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

from gateway.extract.context import Context, EncryptedContent, Part, encrypted
from gateway.extract.limits import LimitExceeded
from gateway.extract.ocr import OcrUnavailable, check_pixels, ocr_image

_MIN_PAGE_TEXT = 16  # fewer visible characters than this and a page with images is treated as a scan
_METADATA_KEYS = ("/Title", "/Author", "/Subject", "/Keywords", "/Creator", "/Producer")


def extract_pdf(part: Part, ctx: Context) -> None:
    """All text a reader of the PDF could see (or OCR could read off its scans)."""
    try:
        reader = PdfReader(io.BytesIO(part.data), strict=False)
    except NotImplementedError as exc:  # pypdf knows only the Standard security handler
        if b"/Encrypt" not in part.data:
            raise
        raise EncryptedContent(_unsupported_reason(part.data)) from exc
    if reader.is_encrypted:
        _open_encrypted(reader, part, ctx)
    _metadata(reader, part, ctx)
    pages = reader.pages
    if len(pages) > ctx.limits.max_pages:
        ctx.finding_limit(part.location, "max_pages")
    for number, page in enumerate(pages, start=1):
        if number > ctx.limits.max_pages:
            break
        ctx.check_time()
        location = f"{part.location}#page{number}"
        text = page.extract_text() or ""
        ctx.emit(location, text)
        if len(text.strip()) < _MIN_PAGE_TEXT:
            _ocr_page(page, location, ctx)
        _annotations(page, location, ctx)
    _form_fields(reader, part, ctx)
    _embedded_files(reader, part, ctx)


def _unsupported_reason(data: bytes) -> str:
    irm = b"MicrosoftIRMServices" in data or b"/EncryptedPayload" in data
    return "irm:pdf" if irm else "pdf:unsupported-encryption"


def _open_encrypted(reader: PdfReader, part: Part, ctx: Context) -> None:
    try:
        opened = reader.decrypt("")
    except (DependencyError, NotImplementedError, PdfReadError, ValueError, KeyError) as exc:
        raise EncryptedContent(_unsupported_reason(part.data)) from exc
    if not opened:
        irm = _unsupported_reason(part.data) == "irm:pdf"
        raise EncryptedContent("irm:pdf" if irm else "pdf:password")
    ctx.finding(encrypted(part.location, "pdf:permissions", readable=True))


def _metadata(reader: PdfReader, part: Part, ctx: Context) -> None:
    try:
        info = reader.metadata
    except (PdfReadError, FileNotDecryptedError, TypeError, KeyError):
        return
    if info:
        values = (str(info.get(key, "")) for key in _METADATA_KEYS)
        ctx.emit(f"{part.location}#metadata", "\n".join(v for v in values if v))


def _ocr_page(page: Any, location: str, ctx: Context) -> None:
    try:
        images = list(page.images)
    except (PdfReadError, ValueError, KeyError, TypeError, NotImplementedError, OSError):
        return
    texts: list[str] = []
    for image in images:
        ctx.check_time()
        try:
            check_pixels(image.data, ctx)
            ctx.take_ocr()
            buffer = io.BytesIO()
            image.image.save(buffer, format="PNG")
            texts.append(ocr_image(buffer.getvalue(), ctx))
        except OcrUnavailable as exc:
            ctx.finding_unscannable(location, str(exc))
            return
        except LimitExceeded as exc:
            ctx.finding_limit(location, exc.limit)
            return
        except (OSError, ValueError, KeyError, TypeError, NotImplementedError):
            continue  # an image PIL cannot decode is no more readable to a person
    ctx.emit(f"{location}#ocr", "\n".join(texts))


def _annotations(page: Any, location: str, ctx: Context) -> None:
    try:
        annots = page.get("/Annots")
        objects = annots.get_object() if annots is not None else []
        texts = [str(a.get_object().get("/Contents", "")) for a in objects]
    except (PdfReadError, AttributeError, KeyError, TypeError, ValueError):
        return
    ctx.emit(f"{location}#annotations", "\n".join(t for t in texts if t))


def _form_fields(reader: PdfReader, part: Part, ctx: Context) -> None:
    try:
        fields = reader.get_fields() or {}
    except (PdfReadError, AttributeError, KeyError, TypeError, ValueError):
        return
    values = [f"{name}: {field.get('/V')}" for name, field in fields.items() if field.get("/V")]
    ctx.emit(f"{part.location}#form", "\n".join(values))


def _embedded_files(reader: PdfReader, part: Part, ctx: Context) -> None:
    try:
        attachments = reader.attachments
        items = list(attachments.items())
    except (PdfReadError, AttributeError, KeyError, TypeError, ValueError):
        return
    for name, contents in items:
        for data in contents:
            ctx.recurse(bytes(data), f"{part.location}/{name}", filename=name)
