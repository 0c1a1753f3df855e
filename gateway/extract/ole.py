"""Legacy binary Office and other OLE2 compound files: triage, DOC, PPT, embedded objects.

OLE2 is a container; what is inside decides: an ``EncryptionInfo`` stream is a
password-encrypted OOXML document, ``DataSpaces``/DRM streams mark IRM/RMS
protection, msoffcrypto-tool recognises encrypted DOC/XLS/PPT, ``__substg1.0_``
streams make an Outlook item.  Unencrypted XLS goes to xlrd; DOC text is read
through its piece table and PPT text from its text atoms (both small, documented
binary structures); anything else is scraped for strings, labelled
``#best-effort`` in the location.
"""

from __future__ import annotations

import io
import re
import struct

import msoffcrypto
import olefile
import xlrd

from gateway.extract.context import Context, EncryptedContent, Part
from gateway.extract.mail import extract_msg_file
from gateway.extract.spreadsheet import extract_xls

_ASCII_RUN = re.compile(rb"[\x20-\x7e\t\r\n]{6,}")
_UTF16_RUN = re.compile(rb"(?:[\x20-\x7e]\x00){4,}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_DOC_FIELD = re.compile(r"\x13[^\x14\x15]*\x14?")  # field instructions: keep the shown result only
_COMPRESSED = 0x40000000
_TEXT_CHARS_ATOM = 0x0FA0
_TEXT_BYTES_ATOM = 0x0FA8
_MAX_STREAM = 64 * 1024 * 1024


def extract_ole(part: Part, ctx: Context) -> None:
    """Route an OLE2 compound file by what its streams say it is."""
    with olefile.OleFileIO(part.data) as ole:
        streams = ["/".join(path) for path in ole.listdir(streams=True, storages=True)]
        _refuse_protected(part.data, streams)
        if any(name.startswith("__substg1.0_") for name in streams):
            extract_msg_file(part, ctx)  # an Outlook item; extract_msg handles its attachments
            return
        before = len(ctx.out.segments)
        try:
            if "Workbook" in streams or "Book" in streams:
                extract_xls(part, ctx)
            elif "WordDocument" in streams:
                ctx.emit(f"{part.location}#body", doc_text(ole))
            elif "PowerPoint Document" in streams:
                ctx.emit(f"{part.location}#slides", ppt_text(_stream(ole, "PowerPoint Document")))
        except (xlrd.XLRDError, ValueError, struct.error, OSError, IndexError):
            pass  # an older or odd variant of the format: the string scrape below still reads it
        if len(ctx.out.segments) == before:
            # Nothing from the structured reader (Word 6, Excel 95, Works…): fall back to strings.
            _scrape(ole, streams, part, ctx)
        _embedded_objects(ole, streams, part, ctx)


def _refuse_protected(data: bytes, streams: list[str]) -> None:
    lowered = [name.lower() for name in streams]
    if any("drmencrypted" in name or name.endswith("drmcontent") for name in lowered):
        raise EncryptedContent("irm:office")
    if "encryptioninfo" in lowered or "encryptedpackage" in lowered:
        raise EncryptedContent("office:password")
    try:
        office = msoffcrypto.OfficeFile(io.BytesIO(data))
        protected = office.is_encrypted()
    except Exception:  # msoffcrypto raises assorted errors on formats it does not know
        return
    if protected:
        raise EncryptedContent("office:password")


def _stream(ole: olefile.OleFileIO, name: str) -> bytes:
    with ole.openstream(name) as stream:
        return bytes(stream.read(_MAX_STREAM))


def doc_text(ole: olefile.OleFileIO) -> str:
    """Text of a Word 97-2003 document, read through the piece table ([MS-DOC] 2.4.1)."""
    word = _stream(ole, "WordDocument")
    n_fib, flags = struct.unpack_from("<H", word, 2)[0], struct.unpack_from("<H", word, 0x0A)[0]
    if n_fib < 0x00C1:
        raise ValueError("pre-Word 97 file")
    table = _stream(ole, "1Table" if flags & 0x0200 else "0Table")
    fc_clx, lcb_clx = struct.unpack_from("<II", word, 0x01A2)
    clx = table[fc_clx : fc_clx + lcb_clx]
    pos = 0
    while pos < len(clx) and clx[pos] == 0x01:  # Prc entries (formatting) come first
        pos += 3 + struct.unpack_from("<H", clx, pos + 1)[0]
    if pos >= len(clx) or clx[pos] != 0x02:
        raise ValueError("no piece table")
    lcb = struct.unpack_from("<I", clx, pos + 1)[0]
    plc = clx[pos + 5 : pos + 5 + lcb]
    count = (lcb - 4) // 12
    cps = struct.unpack_from(f"<{count + 1}I", plc, 0)
    pieces: list[str] = []
    for index in range(count):
        fc = struct.unpack_from("<I", plc, 4 * (count + 1) + 8 * index + 2)[0]
        chars = cps[index + 1] - cps[index]
        if fc & _COMPRESSED:
            start = (fc & ~_COMPRESSED) // 2
            pieces.append(word[start : start + chars].decode("cp1252", errors="replace"))
        else:
            pieces.append(word[fc : fc + 2 * chars].decode("utf-16-le", errors="replace"))
    return _clean_doc("".join(pieces))


def _clean_doc(text: str) -> str:
    text = _DOC_FIELD.sub("", text).replace("\x15", "")
    text = text.replace("\r", "\n").replace("\x07", "\t").replace("\x0b", "\n").replace("\x0c", "\n")
    return _CONTROL.sub(" ", text)


def ppt_text(data: bytes) -> str:
    """Text atoms of a PowerPoint 97-2003 document stream ([MS-PPT] 2.9.x)."""
    pieces: list[str] = []
    pos = 0
    while pos + 8 <= len(data):
        ver_instance, record_type, length = struct.unpack_from("<HHI", data, pos)
        if ver_instance & 0x000F == 0x000F:
            pos += 8  # a container: its children follow directly
            continue
        body = data[pos + 8 : pos + 8 + length]
        if record_type == _TEXT_CHARS_ATOM:
            pieces.append(body.decode("utf-16-le", errors="replace"))
        elif record_type == _TEXT_BYTES_ATOM:
            pieces.append(body.decode("cp1252", errors="replace"))
        pos += 8 + length
    return _CONTROL.sub(" ", "\n".join(pieces).replace("\r", "\n").replace("\x0b", "\n"))


def _scrape(ole: olefile.OleFileIO, streams: list[str], part: Part, ctx: Context) -> None:
    # Unknown OLE formats (Works, Visio 2003, …): printable runs, clearly marked as best effort.
    texts: list[str] = []
    for name in streams:
        if ole.get_type(name) != olefile.STGTY_STREAM:
            continue
        ctx.check_time()
        data = _stream(ole, name)
        texts.extend(m.decode("ascii") for m in _ASCII_RUN.findall(data))
        texts.extend(m.decode("utf-16-le") for m in _UTF16_RUN.findall(data))
    ctx.emit(f"{part.location}#best-effort", "\n".join(texts))


def _embedded_objects(ole: olefile.OleFileIO, streams: list[str], part: Part, ctx: Context) -> None:
    """Files embedded as OLE objects (Ole10Native packages, CONTENTS/Package streams)."""
    for name in streams:
        leaf = name.rsplit("/", 1)[-1]
        if (
            leaf not in ("\x01Ole10Native", "CONTENTS", "Package")
            or ole.get_type(name) != olefile.STGTY_STREAM
        ):
            continue
        data = _stream(ole, name)
        filename = ""
        if leaf == "\x01Ole10Native":
            filename, data = _ole10_native(data)
        location = f"{part.location}/{filename or name.replace(chr(1), '')}"
        ctx.recurse(data, location, filename=filename)


def _ole10_native(data: bytes) -> tuple[str, bytes]:
    """Unwrap an OLE 1.0 "Package" object: (original file name, file bytes)."""
    try:
        pos = 6  # total size (4) and an unknown u16
        label_end = data.index(b"\x00", pos)
        path_end = data.index(b"\x00", label_end + 1)
        filename = data[pos:label_end].decode("cp1252", errors="replace")
        pos = path_end + 1 + 4  # two u16 flags
        pos += 4 + struct.unpack_from("<I", data, pos)[0]  # temporary path
        size = struct.unpack_from("<I", data, pos)[0]
        return filename, data[pos + 4 : pos + 4 + size]
    except (ValueError, struct.error):
        return "", data
