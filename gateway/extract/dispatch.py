"""Routing: detect what a part is, record it, and hand it to its format handler.

Every failure is caught here and turned into a finding on the part's location,
so one unreadable member never hides its siblings: limits → ``UNSCANNABLE
limit:<name>``, encryption → ``ENCRYPTED``, a parser exception →
``UNSCANNABLE parser_error:<ExceptionName>``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from types import MappingProxyType

from gateway.extract import archive, crypto, mail, ocr, odf, ole, ooxml, pdf, rtf, spreadsheet, text
from gateway.extract.context import (
    Context,
    EncryptedContent,
    Part,
    encrypted,
    type_mismatch,
    unscannable,
)
from gateway.extract.detect import TypeInfo, mismatch, sniff
from gateway.extract.limits import GlobalLimitExceeded, LimitExceeded
from gateway.model import Attachment, Finding

Handler = Callable[[Part, Context], None]

HANDLERS: Mapping[str, Handler] = MappingProxyType(
    {
        "text": text.extract_text,
        "html": text.extract_html,
        "pdf": pdf.extract_pdf,
        "docx": ooxml.extract_docx,
        "pptx": ooxml.extract_pptx,
        "xlsx": spreadsheet.extract_xlsx,
        "xlsb": spreadsheet.extract_xlsb,
        "odf": odf.extract_odf,
        "ole": ole.extract_ole,
        "rtf": rtf.extract_rtf,
        "zip": archive.extract_zip,
        "7z": archive.extract_7z,
        "tar": archive.extract_tar,
        "gzip": archive.extract_compressed,
        "bzip2": archive.extract_compressed,
        "xz": archive.extract_compressed,
        "rar": archive.extract_rar,
        "eml": mail.extract_eml,
        "tnef": mail.extract_tnef,
        "image": ocr.extract_image,
        "pkcs7": crypto.extract_pkcs7,
        "pgp": crypto.extract_pgp,
    }
)

# Formats handled by our own small code on decoded text; everything else runs third-party
# parsers over hostile bytes and is worth isolating.
LOW_RISK_FAMILIES = frozenset({"text", "html", "empty", "unknown", "executable", "pgp", "signature"})


def describe(
    data: bytes, location: str, filename: str, declared_type: str
) -> tuple[Attachment, TypeInfo, Finding | None]:
    """Detect a part's type and describe it; the finding is a name/content mismatch, if any."""
    info = sniff(data, filename, declared_type)
    attachment = Attachment(
        location=location,
        filename=filename,
        declared_type=declared_type,
        real_type=info.mime,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    clash = mismatch(filename, declared_type, info)
    finding = type_mismatch(location, clash[0], clash[1]) if clash else None
    return attachment, info, finding


def extract_node(
    data: bytes, location: str, filename: str, declared_type: str, charset: str | None, ctx: Context
) -> None:
    """Extract nested content (the recursion target of :meth:`Context.recurse`)."""
    attachment, info, clash = describe(data, location, filename, declared_type)
    ctx.out.attachments.append(attachment)
    if clash is not None:
        ctx.finding(clash)
    run_handler(Part(data, location, filename, declared_type, charset, info), ctx)


def run_handler(part: Part, ctx: Context) -> None:
    """Run the part's format handler, turning every way it can fail into a finding."""
    if len(part.data) > ctx.limits.max_part_bytes:
        ctx.finding_limit(part.location, "max_part_bytes")
        return
    handler = HANDLERS.get(part.info.family)
    if handler is None:
        if part.info.family not in ("empty", "signature"):  # nothing to read in either
            ctx.finding(unscannable(part.location, f"unsupported type {part.info.mime}"))
        return
    try:
        handler(part, ctx)
    except GlobalLimitExceeded as exc:
        if ctx.depth > 0:
            raise
        ctx.finding(unscannable(part.location, exc.reason))
    except LimitExceeded as exc:
        ctx.finding(unscannable(part.location, exc.reason))
    except EncryptedContent as exc:
        ctx.finding(encrypted(part.location, exc.reason))
    except RecursionError:
        ctx.finding(unscannable(part.location, "parser_error:RecursionError"))
    except Exception as exc:  # any parser bug on hostile input must stay contained to this part
        ctx.finding(unscannable(part.location, f"parser_error:{type(exc).__name__}"))
