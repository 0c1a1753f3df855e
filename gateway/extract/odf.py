"""OpenDocument (ODT/ODS/ODP and the older StarOffice SXW/SXC/SXI) packages.

Text comes from ``content.xml`` (per sheet ``#<table name>`` for spreadsheets,
per slide for presentations), headers and footers from ``styles.xml``, and
document properties from ``meta.xml``.  A package whose manifest lists
``encryption-data`` is password-protected.
"""

from __future__ import annotations

import posixpath
import re

from gateway.extract.context import Context, EncryptedContent, Part
from gateway.extract.limits import LimitExceeded
from gateway.extract.xmltext import odf_blocks, plain_xml_text
from gateway.extract.zipsafe import open_zip, read_member, read_named

_SECTIONS = {"spreadsheet": "table", "calc": "table", "presentation": "page", "impress": "page"}
_EMBEDDED = re.compile(
    r"^(?:Object \d+/content\.xml|ObjectReplacements/.*|Pictures/.*\.(?:pdf|docx?|xlsx?))$"
)


def extract_odf(part: Part, ctx: Context) -> None:
    """Text, headers/footers and metadata of an OpenDocument package."""
    with open_zip(part.data) as archive:
        manifest = read_named(archive, "META-INF/manifest.xml", ctx) or b""
        if b"encryption-data" in manifest:
            raise EncryptedContent("odf:password")
        kind = (read_named(archive, "mimetype", ctx) or b"").decode("ascii", errors="ignore")
        section = next((tag for key, tag in _SECTIONS.items() if key in kind), "")
        content = read_named(archive, "content.xml", ctx) or b""
        for label, text in odf_blocks(content, ctx, section):
            ctx.emit(f"{part.location}#{label}" if label else f"{part.location}#body", text)
        styles = read_named(archive, "styles.xml", ctx) or b""
        for _, text in odf_blocks(styles, ctx):
            ctx.emit(f"{part.location}#styles", text)
        meta = read_named(archive, "meta.xml", ctx)
        if meta:
            ctx.emit(f"{part.location}#metadata", plain_xml_text(meta, ctx))
        for info in archive.infolist():
            if not _EMBEDDED.match(info.filename):
                continue
            location = f"{part.location}/{info.filename}"
            try:
                data = read_member(archive, info, ctx)
            except LimitExceeded as exc:
                ctx.finding_limit(location, exc.limit)
                continue
            if info.filename.endswith("content.xml"):
                for _, text in odf_blocks(data, ctx):
                    ctx.emit(location, text)
            else:
                ctx.recurse(data, location, filename=posixpath.basename(info.filename))
