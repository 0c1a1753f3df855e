"""Word (DOCX/DOCM) and PowerPoint (PPTX/PPTM) packages, plus what every OOXML package carries.

Text comes from the parts' XML (see :mod:`gateway.extract.xmltext` for why not
python-docx/python-pptx): body, tables, headers, footers, footnotes, endnotes,
comments, tracked insertions and deletions, text boxes; slides, notes and
comments.  Document properties become a ``#metadata`` segment and embedded
files (``*/embeddings/*``, alternative-format chunks) are extracted recursively.
"""

from __future__ import annotations

import posixpath
import re
import zipfile

from gateway.extract.context import Context, Part
from gateway.extract.limits import LimitExceeded
from gateway.extract.xmltext import ooxml_text, plain_xml_text
from gateway.extract.zipsafe import open_zip, read_member, read_named

_WORD_PART = re.compile(r"^word/(document|header\d*|footer\d*|footnotes|endnotes|comments)\.xml$")
_SLIDE = re.compile(r"^ppt/slides/slide(\d+)\.xml$")
_NOTES = re.compile(r"^ppt/notesSlides/notesSlide(\d+)\.xml$")
_PPT_COMMENT = re.compile(r"^ppt/comments/(?:modern)?[cC]omment\w*\.xml$")
# Embedded objects, and alternative-format chunks (altChunk: HTML, MHT, RTF, text pasted in whole).
_EMBEDDED = re.compile(
    r"^(?:word|ppt|xl)/(?:embeddings/.+|[^/]+\.(?:html?|mht|mhtml|rtf|txt))$", re.IGNORECASE
)


def _number(match: re.Match[str]) -> int:
    return int(match.group(1))


def extract_docx(part: Part, ctx: Context) -> None:
    """Every text-bearing part of a Word document, each under its own location suffix."""
    with open_zip(part.data) as archive:
        names = sorted(n for n in archive.namelist() if _WORD_PART.match(n))
        # The body first, so a truncated scan still covers what matters most.
        names.sort(key=lambda n: n != "word/document.xml")
        for name in names:
            ctx.check_time()
            label = posixpath.basename(name)[: -len(".xml")]
            label = "body" if label == "document" else label
            data = read_named(archive, name, ctx) or b""
            ctx.emit(f"{part.location}#{label}", ooxml_text(data, ctx))
        package_extras(archive, part, ctx)


def extract_pptx(part: Part, ctx: Context) -> None:
    """Slides, speaker notes and comments of a presentation, in slide order."""
    with open_zip(part.data) as archive:
        names = archive.namelist()
        slides = sorted((m for m in map(_SLIDE.match, names) if m), key=_number)
        notes = sorted((m for m in map(_NOTES.match, names) if m), key=_number)
        if len(slides) > ctx.limits.max_pages:
            ctx.finding_limit(part.location, "max_pages")
        for match in slides[: ctx.limits.max_pages]:
            data = read_named(archive, match.group(0), ctx) or b""
            ctx.emit(f"{part.location}#slide{match.group(1)}", ooxml_text(data, ctx))
        for match in notes[: ctx.limits.max_pages]:
            data = read_named(archive, match.group(0), ctx) or b""
            ctx.emit(f"{part.location}#notes{match.group(1)}", ooxml_text(data, ctx))
        for name in filter(_PPT_COMMENT.match, names):
            data = read_named(archive, name, ctx) or b""
            ctx.emit(f"{part.location}#comments", ooxml_text(data, ctx))
        package_extras(archive, part, ctx)


def package_extras(archive: zipfile.ZipFile, part: Part, ctx: Context) -> None:
    """Document properties and embedded files, common to all OOXML packages."""
    for name in ("docProps/core.xml", "docProps/custom.xml"):
        data = read_named(archive, name, ctx)
        if data:
            ctx.emit(f"{part.location}#metadata", plain_xml_text(data, ctx))
    for info in archive.infolist():
        if not _EMBEDDED.match(info.filename) or info.is_dir():
            continue
        location = f"{part.location}/{info.filename}"
        try:
            data = read_member(archive, info, ctx)
        except LimitExceeded as exc:
            ctx.finding_limit(location, exc.limit)
            continue
        ctx.recurse(data, location, filename=posixpath.basename(info.filename))
