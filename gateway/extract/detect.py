"""What a part really is: by content (libmagic, then container structure), by name last.

The *family* chosen here picks the handler.  A name or declared type that
disagrees with the content is itself worth a finding (``FILE_TYPE_MISMATCH``):
renaming ``clients.xlsx`` to ``notes.txt`` is a classic way round filters.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from dataclasses import dataclass

import magic

# libmagic reads only the head of a file; OOXML/ODF are recognised from the first entries.
SNIFF_BYTES = 256 * 1024

_MIME_FAMILY: dict[str, str] = {
    "application/pdf": "pdf",
    "application/zip": "zip",
    "application/x-zip-compressed": "zip",
    "application/epub+zip": "zip",
    "application/java-archive": "zip",
    "application/x-ole-storage": "ole",
    "application/cdfv2": "ole",
    "application/encrypted": "ole",
    "application/msword": "ole",
    "application/vnd.ms-excel": "ole",
    "application/vnd.ms-powerpoint": "ole",
    "application/vnd.ms-outlook": "ole",
    "application/x-7z-compressed": "7z",
    "application/x-tar": "tar",
    "application/gzip": "gzip",
    "application/x-gzip": "gzip",
    "application/x-bzip2": "bzip2",
    "application/x-xz": "xz",
    "application/x-rar": "rar",
    "application/vnd.rar": "rar",
    "application/x-rar-compressed": "rar",
    "text/rtf": "rtf",
    "application/rtf": "rtf",
    "message/rfc822": "eml",
    "application/vnd.ms-tnef": "tnef",
    "application/pgp-encrypted": "pgp",
    "application/pgp": "pgp",
    "application/pgp-signature": "signature",
    "application/pkcs7-mime": "pkcs7",
    "application/x-pkcs7-mime": "pkcs7",
    "application/pkcs7-signature": "pkcs7",
    "application/x-pkcs7-signature": "pkcs7",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/json": "text",
    "application/xml": "text",
    "application/csv": "text",
    "application/x-dosexec": "executable",
    "application/x-executable": "executable",
    "application/x-sharedlib": "executable",
    "application/x-pie-executable": "executable",
    "application/x-mach-binary": "executable",
    "application/x-empty": "empty",
    "inode/x-empty": "empty",
}
_IMAGE_TYPES = {"image/png", "image/jpeg", "image/tiff", "image/gif", "image/bmp", "image/webp"}
_ZIP_FAMILIES = {"zip", "docx", "xlsx", "xlsb", "pptx", "odf"}

# Which families a file name promises.  Names not listed promise nothing.
_EXT_FAMILIES: dict[str, set[str]] = {
    "pdf": {"pdf"},
    "zip": _ZIP_FAMILIES,
    "7z": {"7z"},
    "rar": {"rar"},
    "tar": {"tar"},
    "gz": {"gzip"},
    "tgz": {"gzip"},
    "bz2": {"bzip2"},
    "xz": {"xz"},
    "rtf": {"rtf"},
    "msg": {"ole"},
    "eml": {"eml", "text"},
    "tnef": {"tnef"},
    "p7m": {"pkcs7"},
    "p7s": {"pkcs7"},
    "exe": {"executable"},
    "dll": {"executable"},
}
for _ext in ("docx", "docm", "dotx", "dotm"):
    _EXT_FAMILIES[_ext] = {"docx", "ole"}  # encrypted OOXML is an OLE container
for _ext in ("xlsx", "xlsm", "xltx", "xltm"):
    _EXT_FAMILIES[_ext] = {"xlsx", "ole"}
for _ext in ("pptx", "pptm", "ppsx", "potx"):
    _EXT_FAMILIES[_ext] = {"pptx", "ole"}
_EXT_FAMILIES["xlsb"] = {"xlsb", "ole"}
for _ext in ("doc", "dot", "xls", "xlt"):
    _EXT_FAMILIES[_ext] = {"ole", "rtf", "html", "text"}  # Office happily saves these as RTF/HTML
for _ext in ("ppt", "pps", "wps"):
    _EXT_FAMILIES[_ext] = {"ole"}
for _ext in ("odt", "ods", "odp", "odg", "sxw", "sxc", "sxi"):
    _EXT_FAMILIES[_ext] = {"odf"}
for _ext in ("txt", "csv", "tsv", "log", "md", "json", "xml", "ics", "vcf", "html", "htm"):
    _EXT_FAMILIES[_ext] = {"text", "html", "eml"}
for _ext in ("png", "jpg", "jpeg", "gif", "tif", "tiff", "bmp", "webp"):
    _EXT_FAMILIES[_ext] = {"image"}

# When libmagic has nothing to say, the name decides.
_EXT_FALLBACK: dict[str, str] = {
    "txt": "text",
    "csv": "text",
    "tsv": "text",
    "log": "text",
    "json": "text",
    "xml": "text",
    "ics": "text",
    "vcf": "text",
    "md": "text",
    "html": "html",
    "htm": "html",
    "eml": "eml",
    "rtf": "rtf",
    "p7m": "pkcs7",
    "p7s": "pkcs7",
    "gpg": "pgp",
    "pgp": "pgp",
    "asc": "text",
}


@dataclass(frozen=True)
class TypeInfo:
    """The detected type of a part: MIME type, libmagic description, handler family."""

    mime: str
    description: str
    family: str


def extension(filename: str) -> str:
    """The lower-case extension of a file name, without the dot ("" when none)."""
    return os.path.splitext(filename)[1].lower().lstrip(".")


def sniff(data: bytes, filename: str, declared_type: str) -> TypeInfo:
    """Detect a part's type from its bytes, refining containers by their structure."""
    head = data[:SNIFF_BYTES]
    try:
        mime = magic.from_buffer(head, mime=True).lower()
        description = magic.from_buffer(head)
    except magic.MagicException:
        mime, description = "application/octet-stream", "data"
    family = _family_from_content(data, mime, description)
    if declared_type.lower() == "application/pgp-encrypted":
        family = "pgp"  # the PGP/MIME control part ("Version: 1") announces an encrypted sibling
    if family == "unknown":
        family = _EXT_FALLBACK.get(extension(filename), "unknown")
    if family == "text" and (
        extension(filename) == "eml" or declared_type.lower() == "message/rfc822" or _looks_like_message(head)
    ):
        family = "eml"
    if family == "unknown" and declared_type:
        family = _MIME_FAMILY.get(declared_type.lower(), "unknown")
        if family == "unknown" and declared_type.lower().startswith("text/"):
            family = "text"
    return TypeInfo(mime=mime, description=description, family=family)


def _family_from_content(data: bytes, mime: str, description: str) -> str:
    if not data:
        return "empty"
    if mime in _IMAGE_TYPES:
        return "image"
    if "pgp" in description.lower() and "encrypted" in description.lower():
        return "pgp"
    if data.lstrip()[:27] == b"-----BEGIN PGP MESSAGE-----":
        return "pgp"  # armour inside other text is flagged by the text handler, text kept
    if _looks_pkcs7(data):
        return "pkcs7"
    if data[:4] == b"\x78\x9f\x3e\x22":  # TNEF signature, little-endian 0x223E9F78
        return "tnef"
    family = _MIME_FAMILY.get(mime)
    if family is None and (mime.startswith("application/vnd.openxmlformats") or "opendocument" in mime):
        family = "zip"
    if family is None and mime.startswith("application/vnd.ms-") and data[:4] == b"PK\x03\x04":
        family = "zip"  # Visio, XPS and friends: OPC packages
    if family == "zip" or (family is None and data[:4] == b"PK\x03\x04"):
        return _refine_zip(data)
    if family is not None:
        return family
    if mime.startswith("text/"):
        return "text"
    return "unknown"


_HEADER_LINE = re.compile(rb"^[A-Za-z][A-Za-z0-9-]{1,40}:[ \t]", re.MULTILINE)
_MESSAGE_HEADERS = (b"from:", b"to:", b"subject:", b"date:", b"message-id:", b"mime-version:", b"received:")


def _looks_like_message(head: bytes) -> bool:
    """An RFC 822 message that libmagic called text: header lines first, then a blank line."""
    block = head[:16384].replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    lines = [line for line in block.split(b"\n") if line and not line[:1].isspace()]
    if len(lines) < 2 or not all(_HEADER_LINE.match(line) for line in lines):
        return False
    known = sum(line.lower().startswith(_MESSAGE_HEADERS) for line in lines)
    return known >= 2


def _looks_pkcs7(data: bytes) -> bool:
    """DER ContentInfo with a PKCS#7 content type (1.2.840.113549.1.7.x) near the start."""
    if data[:1] == b"\x30" and b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07" in data[:32]:
        return True
    return data.lstrip()[:32].startswith((b"-----BEGIN PKCS7-----", b"-----BEGIN CMS-----"))


def _refine_zip(data: bytes) -> str:
    """Tell Office/ODF packages from plain ZIP archives by their member names."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist()[:5000])
            if "mimetype" in names:
                kind = archive.read("mimetype")[:100] if archive.getinfo("mimetype").file_size < 200 else b""
                if kind.startswith((b"application/vnd.oasis.opendocument", b"application/vnd.sun.xml")):
                    return "odf"
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, EOFError, NotImplementedError):
        return "zip"
    if "word/document.xml" in names:
        return "docx"
    if "xl/workbook.xml" in names:
        return "xlsx"
    if "xl/workbook.bin" in names:
        return "xlsb"
    if "ppt/presentation.xml" in names:
        return "pptx"
    return "zip"


def mismatch(filename: str, declared_type: str, info: TypeInfo) -> tuple[str, str] | None:
    """``(declared, detected)`` when the name promises a type the content is not, else None."""
    if info.family in ("unknown", "empty"):
        return None
    ext = extension(filename)
    expected = _EXT_FAMILIES.get(ext)
    if expected is not None:
        return None if info.family in expected else (f".{ext}", info.mime)
    if not ext and declared_type:
        declared_family = _MIME_FAMILY.get(declared_type.lower())
        if declared_family in ("pdf", "rtf", "executable") and declared_family != info.family:
            return (declared_type.lower(), info.mime)
    if info.family == "executable" and ext not in ("bin", "dat", "com", "so", "sys", "elf", ""):
        return (f".{ext}", info.mime)
    return None
