"""Hostile input stops at a limit with an UNSCANNABLE finding naming it, in bounded time and memory."""

from __future__ import annotations

import gzip
import io
import os
import re
import sys
import tarfile
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor

import pytest

from gateway.extract import ExtractLimits, Extractor, extract_part, extract_part_isolated
from gateway.extract.isolate import run_forked
from tests.extract.helpers import TFN, findings_at, reasons, run, text_at
from tests.support import shared_dir

SANITY_S = 30.0  # generous: these must not hang, not be fast


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    started = time.monotonic()
    result = fn(*args, **kwargs)
    elapsed = time.monotonic() - started
    assert elapsed < SANITY_S
    return result


def test_zip_bomb_member_stops_at_ratio_before_reading() -> None:
    bomb = _zip({"zeros.txt": bytes(64 * 1024 * 1024), "note.txt": f"TFN {TFN}".encode()})
    assert len(bomb) < 200_000
    result = _timed(run, bomb, "bomb.zip")
    assert findings_at(result, "UNSCANNABLE", "attachment[1]:bomb.zip/zeros.txt") == ["limit:max_part_bytes"]
    assert TFN in text_at(result, "attachment[1]:bomb.zip/note.txt")  # siblings are still read
    ratio = _timed(run, _zip({"zeros.txt": bytes(8 * 1024 * 1024)}), "ratio.zip")
    assert findings_at(ratio, "UNSCANNABLE", "attachment[1]:ratio.zip/zeros.txt") == ["limit:max_ratio"]


def test_gzip_bomb_stops_while_streaming() -> None:
    bomb = gzip.compress(bytes(100 * 1024 * 1024), compresslevel=9)  # ~1000:1
    result = _timed(run, bomb, "bomb.txt.gz")
    assert reasons(result, "UNSCANNABLE") == ["limit:max_ratio"]
    # A milder one that stays under the ratio but over the size limit is cut at max_part_bytes.
    big = gzip.compress(bytes(range(256)) * (80 * 1024 * 4), compresslevel=1)
    capped = _timed(run, big, "big.bin.gz", max_part_bytes=10 * 1024 * 1024)
    assert "limit:max_part_bytes" in reasons(capped, "UNSCANNABLE")


def test_fifty_deep_nesting_stops_at_max_depth() -> None:
    data = f"TFN {TFN}".encode()
    name = "core.txt"
    for level in range(50):
        data = _zip({name: data})
        name = f"level{level}.zip"
    result = _timed(run, data, name)
    assert reasons(result, "UNSCANNABLE") == ["limit:max_depth"]
    (finding,) = result.findings
    # max_depth levels were opened; the member one level further down is the one refused.
    assert finding.location.count("/") == ExtractLimits().max_depth + 1


def test_two_gigabyte_sparse_tar_member_is_refused_without_reading_it() -> None:
    # A GNU sparse (PAX 0.1) member: 512 bytes stored, 2 GiB when read.
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("huge.txt")
        info.size = 512
        info.pax_headers = {"GNU.sparse.map": "0,512", "GNU.sparse.size": str(2**31)}
        archive.addfile(info, io.BytesIO(b"x" * 512))
        small = tarfile.TarInfo("small.txt")
        payload = f"TFN {TFN}".encode()
        small.size = len(payload)
        archive.addfile(small, io.BytesIO(payload))
    with tarfile.open(fileobj=io.BytesIO(buffer.getvalue())) as check:
        assert check.getmember("huge.txt").size == 2**31
    result = _timed(run, buffer.getvalue(), "sparse.tar")
    assert findings_at(result, "UNSCANNABLE", "attachment[1]:sparse.tar/huge.txt") == ["limit:max_part_bytes"]
    assert TFN in text_at(result, "attachment[1]:sparse.tar/small.txt")


def test_member_count_limit() -> None:
    archive = _zip({f"f{i}.txt": b"hello" for i in range(30)})
    result = run(archive, "many.zip", max_members=10)
    assert reasons(result, "UNSCANNABLE") == ["limit:max_members"]
    assert len(result.segments) == 10


def test_text_budget_truncates_and_says_so() -> None:
    extractor = Extractor(ExtractLimits(max_text_bytes=1000), isolation="inline")
    budget = extractor.new_budget()
    first = extractor.extract(
        b"a" * 800, filename="a.txt", declared_type="text/plain", charset=None, location="a", budget=budget
    )
    second = extractor.extract(
        b"b" * 800, filename="b.txt", declared_type="text/plain", charset=None, location="b", budget=budget
    )
    assert not first.findings
    assert reasons(second, "UNSCANNABLE") == ["limit:max_text_bytes"]
    assert len(second.segments[0].text) == 200


def _slow_zip() -> bytes:
    return _zip({f"m{i}.txt": f"member {i}".encode() for i in range(4000)}, zipfile.ZIP_STORED)


@pytest.mark.parametrize("isolation", ["inline", "fork"])
def test_part_timeout(isolation: str) -> None:
    result = _timed(
        run, _slow_zip(), "slow.zip", isolation=isolation, part_timeout_s=0.05, max_members=10_000
    )
    assert "limit:part_timeout" in reasons(result, "UNSCANNABLE")


def test_fork_kills_a_hang_in_c_code() -> None:
    # Catastrophic regex backtracking runs in C: SIGALRM cannot interrupt it, SIGKILL can.
    outcome = _timed(run_forked, lambda: re.match(r"(a+)+$", "a" * 64 + "b"), timeout_s=0.5, memory_bytes=0)
    assert outcome.error == "timeout"


def test_fork_contains_a_crash_and_an_exception() -> None:
    assert run_forked(os.abort, timeout_s=5, memory_bytes=0).error == "SIGABRT"
    assert run_forked(lambda: 1 / 0, timeout_s=5, memory_bytes=0).error == "ZeroDivisionError"
    assert run_forked(lambda: bytearray(2**33), timeout_s=5, memory_bytes=256 * 2**20).error == "MemoryError"
    assert run_forked(lambda: 42, timeout_s=5, memory_bytes=0).value == 42


def _isolated_in_worker(data: bytes) -> list[str]:
    limits = ExtractLimits(part_timeout_s=0.05, max_members=10_000)
    result = extract_part_isolated(
        data, filename="slow.zip", declared_type="application/zip", charset=None, location="w", limits=limits
    )
    return [f.attributes.get("reason", "") for f in result.findings]


def test_isolation_works_inside_a_process_pool_worker() -> None:
    with ProcessPoolExecutor(max_workers=1) as pool:
        found = pool.submit(_isolated_in_worker, _slow_zip()).result(timeout=SANITY_S)
    assert "limit:part_timeout" in found


def test_parser_error_is_contained_to_the_part() -> None:
    broken = b"%PDF-1.7\n1 0 obj <</Type/Catalog/Pages 2 0 R>> endobj\ntrailer <</Root 9 0 R>>\n%%EOF"
    archive = _zip({"broken.pdf": broken, "fine.txt": f"TFN {TFN}".encode()})
    result = run(archive, "mixed.zip")
    assert TFN in text_at(result, "attachment[1]:mixed.zip/fine.txt")
    assert all(r.startswith("parser_error:") for r in reasons(result, "UNSCANNABLE"))


def test_name_content_mismatch() -> None:
    disguised = run(_zip({"clients.csv": f"Jane,{TFN}".encode()}), "notes.txt")
    (finding,) = [f for f in disguised.findings if f.entity_type == "FILE_TYPE_MISMATCH"]
    assert finding.attributes == {"declared": ".txt", "detected": "application/zip"}
    assert TFN in text_at(disguised, "attachment[1]:notes.txt/clients.csv")  # still read as what it is
    with open(sys.executable, "rb") as handle:
        program = handle.read(1 << 20)
    executable = run(program, "invoice.pdf")
    (finding,) = [f for f in executable.findings if f.entity_type == "FILE_TYPE_MISMATCH"]
    assert finding.attributes["declared"] == ".pdf"
    assert "executable" in finding.attributes["detected"] or "sharedlib" in finding.attributes["detected"]
    assert executable.attachments[0].real_type == finding.attributes["detected"]
    assert not [f for f in run(b"plain words", "a.txt").findings if f.entity_type == "FILE_TYPE_MISMATCH"]


def test_cache_extracts_identical_bytes_once_and_relocates() -> None:
    extractor = Extractor(ExtractLimits(cache_entries=4), isolation="inline")
    data = _zip({"c.txt": f"TFN {TFN}".encode()})
    first = extractor.extract(
        data, filename="a.zip", declared_type="", charset=None, location="attachment[1]:a.zip"
    )
    second = extractor.extract(
        data, filename="b.zip", declared_type="", charset=None, location="attachment[3]:b.zip"
    )
    assert extractor.cache.hits == 1
    assert TFN in text_at(first, "attachment[1]:a.zip/c.txt")
    assert TFN in text_at(second, "attachment[3]:b.zip/c.txt")
    assert second.attachments[0].filename == "b.zip"
    for i in range(6):
        extractor.extract(bytes([i]) * 10, filename="x.txt", declared_type="", charset=None, location="x")
    assert len(extractor.cache) == 4


def test_extract_part_convenience_wrapper() -> None:
    result = extract_part(
        f"TFN {TFN}".encode(),
        filename="a.txt",
        declared_type="text/plain",
        charset="utf-8",
        location="attachment[1]:a.txt",
        limits=ExtractLimits(),
    )
    assert TFN in text_at(result, "attachment[1]:a.txt")


@pytest.mark.parametrize(
    ("name", "reason"),
    [("tika/droste.zip", "limit:max_depth"), ("tika/quine.gz", "limit:max_depth")],
)
def test_corpus_quines(name: str, reason: str) -> None:
    path = shared_dir("corpora", "attachments") / name
    result = _timed(run, path.read_bytes(), path.name, isolation="fork")
    assert reason in reasons(result, "UNSCANNABLE")
