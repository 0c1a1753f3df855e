"""Extraction benchmark over the shared corpora: no crash, no hang, encrypted flagged, text found.

Runs every file under ``<shared>/corpora/attachments/`` and every attachment of
the messages under ``<shared>/corpora/mime_robustness/`` through one
:class:`gateway.extract.Extractor`, then prints per format: files, bytes of text
extracted, encrypted detected vs expected (``ATTACHMENTS.tsv``), unscannable,
parser errors, and the ten slowest files.  Extracted text is never printed.

    .venv/bin/python bench/extraction.py [--inline] [--timeout S]

The shared folder is ``$DLP_SHARED_DIR`` or ``<repo>/../shared``.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gateway.extract import ExtractLimits, Extractor  # noqa: E402
from gateway.model import Extraction  # noqa: E402

# Expected-output files that ship beside the robustness messages; they are not messages.
_NOT_MESSAGES = {".json", ".xml", ".out", ".md", ".tsv", ".bin", ".py", ".js", ".pl", ".txt_decoded"}


# Corpus files with no text a person could read, by construction; listed so the share of
# readable files that yielded text can be stated both with and without them.
NO_TEXT_BY_CONSTRUCTION = {
    "zip4j/valid_empty_zip_file.zip": "empty archive",
    "tika/gbk.zip": "holds one 0-byte file",
    "tika/testDetached.p7s": "detached signature: certificates only",
    "tika/droste.zip": "zip quine: stops at max_depth",
    "tika/quine.gz": "gzip quine: stops at max_depth",
    "tnefparse/minimal_attachment.tnef": "46-byte TNEF with an empty attachment",
    "tika/testPDF_jsActionOnPage.pdf": "one blank page with a JavaScript action",
    "tika/testPDF_malformedXFA.pdf": "1x1 blank page, broken XFA",
    "tika/testZip_with_DataDescriptor.zip": "members are 4 binary bytes each",
}


@dataclass
class Row:
    files: int = 0
    text_bytes: int = 0
    with_text: int = 0
    encrypted_expected: int = 0
    encrypted_flagged: int = 0
    unscannable: int = 0
    errors: int = 0
    missed: list[str] = field(default_factory=list)


def shared_dir() -> Path:
    return Path(os.environ.get("DLP_SHARED_DIR", REPO.parent / "shared"))


def expected_encrypted(root: Path) -> dict[str, bool]:
    table = root / "ATTACHMENTS.tsv"
    if not table.exists():
        return {}
    with table.open(newline="") as handle:
        return {row["file"]: row["encrypted"] == "yes" for row in csv.DictReader(handle, delimiter="\t")}


def reasons(result: Extraction, kind: str) -> list[str]:
    return [f.attributes.get("reason", "") for f in result.findings if f.entity_type == kind]


def record(row: Row, result: Extraction, name: str, expect_encrypted: bool | None) -> None:
    row.files += 1
    size = sum(len(s.text.encode()) for s in result.segments)
    row.text_bytes += size
    encrypted = bool(reasons(result, "ENCRYPTED"))
    unscannable = reasons(result, "UNSCANNABLE")
    row.unscannable += bool(unscannable)
    row.errors += any(r.startswith("parser_error") for r in unscannable)
    if expect_encrypted:
        row.encrypted_expected += 1
        row.encrypted_flagged += encrypted or bool(unscannable)
        if not (encrypted or unscannable):
            row.missed.append(f"{name} (encrypted, not flagged)")
    elif expect_encrypted is None:  # messages: no expectation, count what was flagged
        row.encrypted_flagged += encrypted
    if not expect_encrypted and size:
        row.with_text += 1
        return
    if expect_encrypted:
        return
    if expect_encrypted is not None:
        row.missed.append(f"{name} (no text; {', '.join(sorted(set(unscannable))) or 'no finding'})")


def run_attachments(extractor: Extractor, root: Path, rows: dict[str, Row], times: list) -> None:
    expected = expected_encrypted(root)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        name = str(path.relative_to(root))
        if name not in expected:
            continue
        data = path.read_bytes()
        started = time.perf_counter()
        result = extractor.extract(
            data,
            filename=path.name,
            declared_type="application/octet-stream",
            charset=None,
            location=f"attachment[1]:{path.name}",
        )
        times.append((time.perf_counter() - started, f"attachments/{name}"))
        ext = path.suffix.lower().lstrip(".") or "(none)"
        record(rows[ext], result, name, expected[name])


def run_messages(extractor: Extractor, root: Path, rows: dict[str, Row], times: list) -> int:
    from gateway.parse import parse_message

    messages = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix.lower() in _NOT_MESSAGES or "_decoded_" in path.name or path.name.isupper():
            continue
        raw = path.read_bytes()
        try:
            parsed = parse_message(raw)
        except Exception:  # the parser's robustness is bench/…'s job elsewhere; skip, count
            rows["(message parse failed)"].files += 1
            continue
        messages += 1
        budget = extractor.new_budget()
        for part in parsed.parts:
            started = time.perf_counter()
            result = extractor.extract(
                part.data,
                filename=part.filename,
                declared_type=part.declared_type,
                charset=part.charset,
                location=part.location,
                budget=budget,
            )
            times.append((time.perf_counter() - started, f"{path.relative_to(root)} {part.location}"))
            real = result.attachments[0].real_type if result.attachments else "?"
            record(rows[f"mime:{real}"], result, str(path.relative_to(root)), None)
    return messages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inline", action="store_true", help="parse in-process (no forked child)")
    parser.add_argument("--timeout", type=float, default=20.0, help="per-part time limit, seconds")
    args = parser.parse_args()
    shared = shared_dir() / "corpora"
    if not shared.exists():
        print(f"skipped: shared corpora not found at {shared}")
        return 0
    limits = ExtractLimits(part_timeout_s=args.timeout)
    extractor = Extractor(limits, isolation="inline" if args.inline else "auto")
    attachment_rows: dict[str, Row] = defaultdict(Row)
    message_rows: dict[str, Row] = defaultdict(Row)
    times: list[tuple[float, str]] = []
    started = time.perf_counter()
    run_attachments(extractor, shared / "attachments", attachment_rows, times)
    messages = run_messages(extractor, shared / "mime_robustness", message_rows, times)
    elapsed = time.perf_counter() - started

    header = f"{'format':<34}{'files':>6}{'text KB':>10}{'w/ text':>8}"
    header += f"{'enc det/exp':>12}{'unscan':>7}{'errors':>7}"
    for title, rows in (
        ("attachments/ by extension", attachment_rows),
        ("mime_robustness attachments by real type", message_rows),
    ):
        print(f"\n## {title}\n{header}")
        total = Row()
        for key in sorted(rows):
            row = rows[key]
            print(
                f"{key[:33]:<34}{row.files:>6}{row.text_bytes // 1024:>10}{row.with_text:>8}"
                f"{f'{row.encrypted_flagged}/{row.encrypted_expected}':>12}{row.unscannable:>7}{row.errors:>7}"
            )
            for attr in (
                "files",
                "text_bytes",
                "with_text",
                "encrypted_expected",
                "encrypted_flagged",
                "unscannable",
                "errors",
            ):
                setattr(total, attr, getattr(total, attr) + getattr(row, attr))
            total.missed += row.missed
        print(
            f"{'TOTAL':<34}{total.files:>6}{total.text_bytes // 1024:>10}{total.with_text:>8}"
            f"{f'{total.encrypted_flagged}/{total.encrypted_expected}':>12}{total.unscannable:>7}{total.errors:>7}"
        )
        if title.startswith("attachments"):
            readable = total.files - total.encrypted_expected
            share = 100.0 * total.with_text / max(readable, 1)
            print(f"text from {total.with_text}/{readable} non-encrypted files ({share:.1f}%)")
            textual = readable - len(NO_TEXT_BY_CONSTRUCTION)
            share = 100.0 * total.with_text / max(textual, 1)
            print(f"text from {total.with_text}/{textual} files that hold readable text ({share:.1f}%)")
            for line in total.missed:
                name = line.split(" (", 1)[0]
                why = NO_TEXT_BY_CONSTRUCTION.get(name)
                print(f"  - {line}" + (f"  [no text by construction: {why}]" if why else ""))
    print(f"\n{messages} robustness messages; total {elapsed:.1f} s; cache hits {extractor.cache.hits}")
    print("\n## 10 slowest parts")
    for seconds, name in sorted(times, reverse=True)[:10]:
        print(f"{seconds:8.2f} s  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
