"""A message with a large XLSX of client records: time to a decision, and peak RSS of the worker.

Builds an XLSX of roughly ``--mb`` megabytes (names, dates of birth, e-mail
addresses, mobiles, TFNs, addresses), attaches it to a message, and scans it
in a fresh worker process exactly as the gateway does (``Scanner.build`` +
``Scanner.scan``), then evaluates the shipped default policy.  Reported: the
split between extraction and detection, findings by type (counts only), the
decision, and the worker's peak RSS.

    .venv/bin/python bench/attachments.py [--mb 10] [--fast/--plain]
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import random
import resource
import sys
import time
from collections import Counter
from email.message import EmailMessage
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def valid_tfn(rng: random.Random) -> str:
    """A random checksum-valid TFN, spaced in threes (every row a different person)."""
    from detectors.checksums import TFN9_WEIGHTS

    while True:
        digits = [rng.randint(0, 9) for _ in range(8)]
        # The last weight is 10 ≡ -1 (mod 11): the check digit is the weighted sum mod 11.
        check = sum(d * w for d, w in zip(digits, TFN9_WEIGHTS, strict=False)) % 11
        if check < 10:
            text = "".join(map(str, digits)) + str(check)
            return f"{text[:3]} {text[3:6]} {text[6:]}"


FIRST = ("Alex", "Sam", "Jordan", "Priya", "Wei", "Olivia", "Noah", "Aisha", "Liam", "Mia")
LAST = ("Nguyen", "Smith", "Patel", "Chen", "Williams", "Brown", "Singh", "Taylor", "Kelly", "Jones")
STREETS = ("George St", "Pitt St", "Collins St", "Northbourne Ave", "Queen St")


def records_xlsx(target_bytes: int, seed: int = 7) -> tuple[bytes, int]:
    """An XLSX of client records of about ``target_bytes``; (file, rows)."""
    from openpyxl import Workbook

    rng = random.Random(seed)
    rows_per_mb = 15_000  # measured: openpyxl's zip of these rows, about 70 bytes a row
    rows = max(100, target_bytes * rows_per_mb // (1024 * 1024))
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Clients")
    sheet.append(["Client ID", "Name", "Date of birth", "Email", "Mobile", "TFN", "Address", "Notes"])
    for i in range(rows):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        sheet.append(
            [
                f"CL-{100000 + i}",
                f"{first} {last}",
                f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(1940, 2005)}",
                f"{first.lower()}.{last.lower()}{i}@example.com",
                f"04{rng.randint(10, 99)} {rng.randint(100, 999)} {rng.randint(100, 999)}",
                valid_tfn(rng),
                f"{rng.randint(1, 200)} {rng.choice(STREETS)}, Sydney NSW 2000",
                "Follow up on payment plan" if i % 7 == 0 else "",
            ]
        )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue(), rows


def message_with(attachment: bytes) -> bytes:
    msg = EmailMessage()
    msg["From"] = "alice@agency.gov.au"
    msg["To"] = "bob@example.com"
    msg["Subject"] = "client list"
    msg.set_content("Here is the client list you asked for.\n")
    msg.add_attachment(
        attachment,
        maintype="application",
        subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        filename="clients.xlsx",
    )
    return msg.as_bytes()


def _worker(raw: bytes, fast: bool, limit_mb: int, out: Any) -> None:
    """In a fresh process, as a gateway worker: build, scan, decide; send back counts and timings."""
    from detectors.config import DetectorConfig
    from gateway.extract import ExtractLimits
    from gateway.scan import Scanner

    started = time.perf_counter()
    limits = ExtractLimits()
    if limit_mb:
        mb = limit_mb * 1024 * 1024
        limits = ExtractLimits(max_part_bytes=mb, max_text_bytes=mb)
    scanner = Scanner.build(DetectorConfig(), limits)
    if not fast:
        scanner.detector._fast_path = None
    built = time.perf_counter()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = scanner.scan(raw)
    scanned = time.perf_counter()
    decision = _decide(result)
    decided = time.perf_counter()
    out.send(
        {
            "build_s": built - started,
            "scan_s": scanned - built,
            "decide_s": decided - scanned,
            "scanned_chars": result.scanned_bytes,
            "findings": Counter(f.entity_type for f in result.findings),
            "decision": decision,
            "rss_idle_mb": rss_before / 1024,
            "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


def _decide(result: Any) -> str:
    """The default policy's decision for the message (or why it could not be evaluated)."""
    try:
        from detectors.registry import all_entities
        from gateway.model import Envelope
        from gateway.policy import decide, load_policy

        repo = Path(__file__).resolve().parents[1]
        policy = load_policy(repo / "policies" / "default.yaml", all_entities())
        envelope = Envelope(sender="alice@agency.gov.au", recipients=("bob@example.com",))
        decision = decide(policy, result, envelope, ("agency.gov.au",))
        action = getattr(decision, "action", decision)
        return str(getattr(action, "name", action)).lower()
    except Exception as exc:  # the policy engine is being changed elsewhere: report, don't fail
        return f"(policy not evaluated: {type(exc).__name__})"


def extraction_only(raw: bytes) -> tuple[float, float, int, list[str]]:
    """Parse and extract in this process as the worker does: (parse s, extract s, text chars, findings)."""
    from gateway.extract import ExtractLimits, Extractor
    from gateway.parse import parse_message

    started = time.perf_counter()
    parsed = parse_message(raw)
    parsed_at = time.perf_counter()
    extractor = Extractor(ExtractLimits())
    budget = extractor.new_budget()
    chars = 0
    findings: list[str] = []
    for part in parsed.parts:
        result = extractor.extract(
            part.data,
            filename=part.filename,
            declared_type=part.declared_type,
            charset=part.charset,
            location=part.location,
            budget=budget,
        )
        chars += sum(len(segment.text) for segment in result.segments)
        findings += [f"{f.entity_type} {f.attributes.get('reason', '')}" for f in result.findings]
    return parsed_at - started, time.perf_counter() - parsed_at, chars, findings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=10.0)
    parser.add_argument("--plain", action="store_true", help="also time the plain Presidio path")
    parser.add_argument("--limit-mb", type=int, default=0, help="raise max_part_bytes/max_text_bytes to this")
    args = parser.parse_args()
    xlsx, rows = records_xlsx(int(args.mb * 1024 * 1024))
    raw = message_with(xlsx)
    if args.limit_mb:
        print(f"(extraction limits raised to {args.limit_mb} MB per part and of text)")
    print(
        f"# XLSX of {rows:,} client records: {len(xlsx) / 1e6:.1f} MB file, message {len(raw) / 1e6:.1f} MB\n"
    )
    parse_s, extract_s, chars, findings = extraction_only(raw)
    print(
        f"Extraction alone, in this process: {parse_s + extract_s:.2f} s "
        f"(MIME parse {parse_s:.2f} s + XLSX → text {extract_s:.2f} s; {chars:,} chars"
        f"{'; ' + ', '.join(findings) if findings else ''})\n"
    )
    print("| path | build s | scan s | decide s | text chars | peak RSS MB (idle) | decision |")
    print("|---|---:|---:|---:|---:|---:|---|")
    context = multiprocessing.get_context("spawn")
    results = {}
    for name, fast in (("fast", True), *((("plain", False),) if args.plain else ())):
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_worker, args=(raw, fast, args.limit_mb, send))
        process.start()
        report = receive.recv()
        process.join()
        results[name] = report
        print(
            f"| {name} | {report['build_s']:.2f} | {report['scan_s']:.2f} | {report['decide_s']:.3f} "
            f"| {report['scanned_chars']:,} | {report['rss_peak_mb']:.0f} ({report['rss_idle_mb']:.0f}) "
            f"| {report['decision']} |"
        )
    for name, report in results.items():
        counts = ", ".join(f"{k} {v:,}" for k, v in sorted(report["findings"].items()))
        print(f"\nfindings ({name}): {counts}")


if __name__ == "__main__":
    main()
