"""Text of an XML document part (OOXML, ODF), streamed and without entity expansion.

Office documents are XML in a ZIP; the libraries that model them (python-docx,
python-pptx) skip tracked insertions and deletions, text boxes, footnotes and
comments, and load whole packages into memory.  Walking the parts' XML ourselves
reads everything a person could see in Word or PowerPoint and keeps memory
bounded, with entity expansion and network access off (billion laughs, XXE).
"""

from __future__ import annotations

import io

from lxml import etree

from gateway.extract.context import Context

# Local names (namespace ignored) for WordprocessingML, DrawingML and PresentationML.
OOXML_TEXT = frozenset({"t", "delText", "instrText", "text"})
OOXML_BREAKS = {"p": "\n", "br": "\n", "cr": "\n", "tab": "\t", "tc": "\t", "tr": "\n"}

# OpenDocument: paragraphs and headings hold the text, with spans and spacing elements inside.
ODF_BLOCKS = frozenset({"p", "h"})
ODF_INLINE = {"s": " ", "tab": "\t", "line-break": "\n"}

_CHECK_EVERY = 5000


def _local(tag: object) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _events(data: bytes) -> etree.iterparse:
    return etree.iterparse(
        io.BytesIO(data),
        events=("end",),
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        recover=True,
    )


def ooxml_text(data: bytes, ctx: Context) -> str:
    """Text of a WordprocessingML/PresentationML/DrawingML part, paragraphs on lines."""
    pieces: list[str] = []
    for count, (_, element) in enumerate(_events(data)):
        name = _local(element.tag)
        if name in OOXML_TEXT and element.text:
            pieces.append(element.text)
        elif name in OOXML_BREAKS:
            pieces.append(OOXML_BREAKS[name])
        if name in ("p", "tr"):
            element.clear(keep_tail=False)
        if count % _CHECK_EVERY == 0:
            ctx.check_time()
    return "".join(pieces)


def odf_blocks(data: bytes, ctx: Context, section: str = "") -> list[tuple[str, str]]:
    """Paragraph text of an ODF part as ``(section name, text)``.

    ``section`` is the local name of the element that splits the output (``table``
    for spreadsheets, ``page`` for presentations); its ``name`` attribute labels it.
    """
    sections: list[tuple[str, str]] = []
    pieces: list[str] = []
    for count, (_, element) in enumerate(_events(data)):
        name = _local(element.tag)
        if name in ODF_BLOCKS:
            pieces.append(_odf_paragraph(element))
            pieces.append("\n")
            element.clear(keep_tail=True)
        elif section and name == section:
            label = next((v for k, v in element.attrib.items() if _local(k) == "name"), "")
            sections.append((label or f"{section}{len(sections) + 1}", "".join(pieces)))
            pieces = []
            element.clear(keep_tail=True)
        if count % _CHECK_EVERY == 0:
            ctx.check_time()
    if "".join(pieces).strip():
        sections.append(("", "".join(pieces)))
    return sections


def _odf_paragraph(element: etree._Element) -> str:
    parts: list[str] = [element.text or ""]
    for child in element:
        name = _local(child.tag)
        if name in ODF_INLINE:
            parts.append(ODF_INLINE[name])
        else:
            parts.append(_odf_paragraph(child))
        parts.append(child.tail or "")
    return "".join(parts)


def plain_xml_text(data: bytes, ctx: Context) -> str:
    """Every text node and attribute value of an arbitrary XML part, one per line."""
    pieces: list[str] = []
    for count, (_, element) in enumerate(_events(data)):
        if element.text and element.text.strip():
            pieces.append(element.text.strip())
        pieces.extend(v for v in element.attrib.values() if v.strip() and not v.startswith("#"))
        if count % _CHECK_EVERY == 0:
            ctx.check_time()
    return "\n".join(pieces)
