"""Archives and compressed files: ZIP, 7z, TAR, gzip, bzip2, xz, RAR.

Members are extracted recursively at ``<archive location>/<member path>``.
Every member is vetted against its declared size and expansion ratio before it
is read, and read with a cap anyway (headers lie; sparse TAR members claim
gigabytes they do not store).  Password-protected members or archives are
``ENCRYPTED``; the readable members of a partly encrypted archive are still read.
"""

from __future__ import annotations

import bz2
import io
import lzma
import posixpath
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from typing import Protocol

import py7zr
import py7zr.exceptions
import py7zr.io
import rarfile

from gateway.extract.context import Context, EncryptedContent, Part, encrypted
from gateway.extract.limits import LimitExceeded
from gateway.extract.zipsafe import SalvagedMember, is_encrypted, open_zip, read_member, salvage, salvage_at

_CHUNK = 256 * 1024


def _member_name(path: str) -> str:
    return posixpath.basename(path.rstrip("/")) or path


def _too_many(index: int, part: Part, ctx: Context) -> bool:
    if index >= ctx.limits.max_members:
        ctx.finding_limit(part.location, "max_members")
        return True
    return False


def extract_zip(part: Part, ctx: Context) -> None:
    """Every member of a ZIP archive; encrypted members are reported, not read.

    A damaged archive (no central directory, bad CRC) is read from its local
    headers as far as possible and reported ``UNSCANNABLE corrupt:zip``: what a
    tolerant unzip tool on the recipient's side shows must not go unscanned.
    """
    try:
        archive = open_zip(part.data)
    except zipfile.BadZipFile:
        ctx.finding_unscannable(part.location, "corrupt:zip")
        for index, member in enumerate(salvage(part.data, ctx)):
            if _too_many(index, part, ctx):
                return
            _salvaged(member, part, ctx)
        return
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        for index, info in enumerate(members):
            if _too_many(index, part, ctx):
                return
            location = f"{part.location}/{info.filename}"
            if is_encrypted(info):
                ctx.finding(encrypted(location, "zip:password"))
                continue
            try:
                data = read_member(archive, info, ctx)
            except LimitExceeded as exc:
                ctx.finding_limit(location, exc.limit)
                continue
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError):
                ctx.finding_unscannable(location, "corrupt:zip")
                rescued = salvage_at(part.data, info.header_offset, ctx)
                if rescued is not None:
                    _salvaged(rescued, part, ctx)
                continue
            ctx.recurse(data, location, filename=_member_name(info.filename))


def _salvaged(member: SalvagedMember, part: Part, ctx: Context) -> None:
    location = f"{part.location}/{member.name}"
    if member.encrypted:
        ctx.finding(encrypted(location, "zip:password"))
    elif member.data is not None:
        ctx.recurse(member.data, location, filename=_member_name(member.name))


def extract_7z(part: Part, ctx: Context) -> None:
    """Every member of a 7z archive (sizes vetted from the header before decompressing)."""
    try:
        archive = py7zr.SevenZipFile(io.BytesIO(part.data))
    except py7zr.exceptions.PasswordRequired as exc:
        raise EncryptedContent("7z:password") from exc
    with archive:
        if archive.needs_password():
            raise EncryptedContent("7z:password")
        entries = [entry for entry in archive.list() if not entry.is_directory]
        wanted: list[str] = []
        for index, entry in enumerate(entries):
            if _too_many(index, part, ctx):
                break
            location = f"{part.location}/{entry.filename}"
            size = entry.uncompressed or 0
            if size > ctx.limits.max_part_bytes:
                ctx.finding_limit(location, "max_part_bytes")
            elif size > ctx.limits.ratio_floor_bytes and size > ctx.limits.max_ratio * len(part.data):
                ctx.finding_limit(location, "max_ratio")
            else:
                wanted.append(entry.filename)
        if not wanted:
            return
        factory = py7zr.io.BytesIOFactory(ctx.limits.max_part_bytes)
        archive.extract(targets=wanted, factory=factory)
    for name in wanted:
        try:
            product = factory.get(name)
        except KeyError:
            continue
        product.seek(0)
        ctx.recurse(product.read(), f"{part.location}/{name}", filename=_member_name(name))


def extract_tar(part: Part, ctx: Context) -> None:
    """Every regular file of a TAR archive, streamed with a capped read."""
    with tarfile.open(fileobj=io.BytesIO(part.data), mode="r:") as archive:
        index = 0
        for member in archive:
            if not member.isfile():
                continue
            if _too_many(index, part, ctx):
                return
            index += 1
            location = f"{part.location}/{member.name}"
            if member.size > ctx.limits.max_part_bytes:
                ctx.finding_limit(location, "max_part_bytes")
                continue
            stream = archive.extractfile(member)
            if stream is None:
                continue
            data = stream.read(ctx.limits.max_part_bytes + 1)
            if len(data) > ctx.limits.max_part_bytes:
                ctx.finding_limit(location, "max_part_bytes")
                continue
            ctx.recurse(data, location, filename=_member_name(member.name))


class _Decompressor(Protocol):
    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...

    @property
    def eof(self) -> bool: ...

    @property
    def needs_input(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...


def _stream_decompress(data: bytes, make: Callable[[], _Decompressor], ctx: Context) -> tuple[bytes, bool]:
    """Decompress a (possibly multi-stream) buffer in bounded steps.

    Returns the output and whether it was cut at ``max_part_bytes``; raises
    ``LimitExceeded('max_ratio')`` as soon as the expansion ratio is broken.
    """
    limits = ctx.limits
    out = bytearray()
    remaining = data
    while remaining:
        decompressor = make()
        pending = remaining
        while not decompressor.eof:
            ctx.check_time()
            chunk = decompressor.decompress(pending, _CHUNK)
            pending = b""
            out += chunk
            if len(out) > limits.ratio_floor_bytes and len(out) > limits.max_ratio * len(data):
                raise LimitExceeded("max_ratio")
            if len(out) > limits.max_part_bytes:
                return bytes(out[: limits.max_part_bytes]), True
            if not chunk and decompressor.needs_input:
                break  # truncated stream: nothing more to feed it
        remaining = decompressor.unused_data if decompressor.eof else b""
    return bytes(out), False


class _GzipDecompressor:
    """zlib in gzip mode with the same interface as bz2/lzma decompressors."""

    def __init__(self) -> None:
        self._inner = zlib.decompressobj(wbits=47)  # 32 + 15: gzip or zlib header, auto-detected
        self._needs_input = True

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        out = self._inner.decompress(self._inner.unconsumed_tail + data, max(max_length, 0))
        self._needs_input = not self._inner.unconsumed_tail
        return out

    @property
    def eof(self) -> bool:
        return self._inner.eof

    @property
    def needs_input(self) -> bool:
        return self._needs_input

    @property
    def unused_data(self) -> bytes:
        return self._inner.unused_data


_DECOMPRESSORS: dict[str, tuple[Callable[[], _Decompressor], str]] = {
    "gzip": (_GzipDecompressor, ".gz"),
    "bzip2": (bz2.BZ2Decompressor, ".bz2"),
    "xz": (lzma.LZMADecompressor, ".xz"),
}


def extract_compressed(part: Part, ctx: Context) -> None:
    """A single compressed stream (gzip, bzip2, xz): decompress with caps and extract the content."""
    make, suffix = _DECOMPRESSORS[part.info.family]
    inner_name = _member_name(part.filename) if part.filename else "content"
    if inner_name.lower().endswith(suffix):
        inner_name = inner_name[: -len(suffix)]
    elif inner_name.lower().endswith(".tgz"):
        inner_name = inner_name[:-4] + ".tar"
    location = f"{part.location}/{inner_name}"
    data, truncated = _stream_decompress(part.data, make, ctx)
    if truncated:
        ctx.finding_limit(location, "max_part_bytes")
    ctx.recurse(data, location, filename=inner_name)


def extract_rar(part: Part, ctx: Context) -> None:
    """RAR: headers are read in Python; member data needs an unrar/7z/bsdtar tool."""
    with rarfile.RarFile(io.BytesIO(part.data)) as archive:
        if archive.needs_password():
            raise EncryptedContent("rar:password")
        members = [info for info in archive.infolist() if not info.is_dir()]
        for index, info in enumerate(members):
            if _too_many(index, part, ctx):
                return
            location = f"{part.location}/{info.filename}"
            if info.needs_password():
                ctx.finding(encrypted(location, "rar:password"))
                continue
            if (info.file_size or 0) > ctx.limits.max_part_bytes:
                ctx.finding_limit(location, "max_part_bytes")
                continue
            try:
                with archive.open(info) as stream:
                    data = stream.read(ctx.limits.max_part_bytes + 1)
            except rarfile.RarCannotExec:
                ctx.finding_unscannable(part.location, "rar: no extraction tool installed")
                return
            ctx.recurse(data[: ctx.limits.max_part_bytes], location, filename=_member_name(info.filename))
