"""Reading ZIP members without trusting their headers.

Shared by the ZIP archive handler and the ZIP-based document formats (OOXML,
ODF).  Sizes and ratios are checked against the central directory before a
member is touched, and reads are capped anyway because headers can lie.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from gateway.extract.context import Context
from gateway.extract.limits import LimitExceeded

ENCRYPTED_FLAG = 0x1
STRONG_ENCRYPTION_FLAG = 0x40
AES_METHOD = 99


def open_zip(data: bytes) -> zipfile.ZipFile:
    """Open a ZIP held in memory (raises ``zipfile.BadZipFile`` when it is not one)."""
    return zipfile.ZipFile(io.BytesIO(data))


def is_encrypted(info: zipfile.ZipInfo) -> bool:
    """True for ZipCrypto, WinZip AES and PKWARE strong encryption alike."""
    return (
        bool(info.flag_bits & (ENCRYPTED_FLAG | STRONG_ENCRYPTION_FLAG)) or info.compress_type == AES_METHOD
    )


def check_member(info: zipfile.ZipInfo, ctx: Context) -> None:
    """Refuse a member whose declared size or expansion ratio breaks the limits."""
    if info.file_size > ctx.limits.max_part_bytes:
        raise LimitExceeded("max_part_bytes")
    check_ratio(info.file_size, info.compress_size, ctx)


def check_ratio(size: int, compressed: int, ctx: Context) -> None:
    """Refuse ``size`` bytes expanded from ``compressed`` past ``max_ratio`` (zip bombs)."""
    limits = ctx.limits
    if size > limits.ratio_floor_bytes and size > limits.max_ratio * max(compressed, 1):
        raise LimitExceeded("max_ratio")


STREAM_CHUNK_BYTES = 1024 * 1024


def stream_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, ctx: Context, chunk_bytes: int = STREAM_CHUNK_BYTES
) -> Iterator[bytes]:
    """A member's decompressed bytes, ``chunk_bytes`` at a time, for parsers that stream.

    Only a chunk is ever held, so ``max_part_bytes`` (a bound on what is held in
    memory) does not apply; what bounds a streamed member is its expansion ratio,
    checked on the bytes actually produced because headers can lie, the part's
    deadline, checked between chunks, and the text budget of whoever consumes it.
    """
    check_ratio(info.file_size, info.compress_size, ctx)
    produced = 0
    with archive.open(info) as stream:
        while chunk := stream.read(chunk_bytes):
            produced += len(chunk)
            check_ratio(produced, info.compress_size, ctx)
            ctx.check_time()
            yield chunk


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, ctx: Context) -> bytes:
    """Read one member, never more than ``max_part_bytes`` whatever its header says."""
    check_member(info, ctx)
    cap = ctx.limits.max_part_bytes
    with archive.open(info) as stream:
        data = stream.read(cap + 1)
    if len(data) > cap:
        raise LimitExceeded("max_part_bytes")
    return data


def read_named(archive: zipfile.ZipFile, name: str, ctx: Context) -> bytes | None:
    """Read a member by name, or None when the package has no such member."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        return None
    return read_member(archive, info, ctx)


_LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")
_LOCAL_SIGNATURE = b"PK\x03\x04"


@dataclass(frozen=True)
class SalvagedMember:
    """A member read from its local header; ``data`` is None when it is encrypted or unsupported."""

    name: str
    data: bytes | None
    encrypted: bool


def salvage_at(data: bytes, offset: int, ctx: Context) -> SalvagedMember | None:
    """Read the member whose local header starts at ``offset``, ignoring CRCs and the central directory.

    Deflate streams end by themselves, so this also reads members written with a
    data descriptor (sizes zero in the local header).
    """
    if offset + _LOCAL_HEADER.size > len(data) or data[offset : offset + 4] != _LOCAL_SIGNATURE:
        return None
    _, _, flags, method, _, _, _, compressed, _, name_len, extra_len = _LOCAL_HEADER.unpack_from(data, offset)
    raw_name = data[offset + 30 : offset + 30 + name_len]
    name = raw_name.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")
    start = offset + 30 + name_len + extra_len
    cap = ctx.limits.max_part_bytes
    view = memoryview(data)[start:]
    if flags & (ENCRYPTED_FLAG | STRONG_ENCRYPTION_FLAG) or method == AES_METHOD:
        return SalvagedMember(name, None, True)
    if method == zipfile.ZIP_STORED:
        end = compressed if compressed else data.find(_LOCAL_SIGNATURE, start) - start
        content = bytes(view[: min(end if end > 0 else len(view), cap + 1)])
    elif method == zipfile.ZIP_DEFLATED:
        try:
            content = zlib.decompressobj(-15).decompress(view, cap + 1)
        except zlib.error:
            return SalvagedMember(name, None, False)
    else:
        return SalvagedMember(name, None, False)
    if len(content) > cap:
        raise LimitExceeded("max_part_bytes")
    return SalvagedMember(name, content, False)


def salvage(data: bytes, ctx: Context) -> Iterator[SalvagedMember]:
    """Every member found by scanning for local headers (for archives zipfile rejects)."""
    offset = data.find(_LOCAL_SIGNATURE)
    while offset != -1:
        ctx.check_time()
        member = salvage_at(data, offset, ctx)
        if member is not None and not member.name.endswith("/"):
            yield member
        offset = data.find(_LOCAL_SIGNATURE, offset + 4)
