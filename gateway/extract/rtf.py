"""RTF documents, as the text a word processor would display (striprtf)."""

from __future__ import annotations

import re

from striprtf.striprtf import rtf_to_text

from gateway.extract.context import Context, Part

_CODEPAGE = re.compile(rb"\\ansicpg(\d+)")


def rtf_bytes_to_text(data: bytes) -> str:
    """Plain text of an RTF document, decoded with the code page it declares."""
    match = _CODEPAGE.search(data[:4096])
    encoding = f"cp{int(match.group(1))}" if match else "cp1252"
    try:
        "".encode(encoding)
    except LookupError:
        encoding = "cp1252"
    # RTF is 7-bit ASCII with escapes; latin-1 maps every byte so nothing is lost before striprtf.
    return str(rtf_to_text(data.decode("latin-1"), encoding=encoding, errors="replace"))


def extract_rtf(part: Part, ctx: Context) -> None:
    """Extract an RTF attachment."""
    ctx.emit(part.location, rtf_bytes_to_text(part.data))
