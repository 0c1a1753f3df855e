"""Exact-data-match at scale: build, load and scan figures for a synthetic agency record set.

Run from the repository root::

    .venv/bin/python -m bench.edm_scale [--records 1000000] [--text-mb 1] [--workdir DIR]

It writes a synthetic records CSV (client id, full name, date of birth, case
number), builds an index with ``require=2``, then, in a fresh process so the
figures are not inflated by the build, loads the index and measures resident
memory, lookup cost per candidate and scan throughput over generated text with
a few real records embedded.  Prints one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from detectors.edm import EdmRecognizer, build_index

COLUMNS = ["client_id", "full_name", "dob", "case_number"]
SYLLABLES = ["ka", "lo", "mi", "ren", "tho", "vash", "quil", "dor", "bex", "yun", "zor", "phi", "sta"]
FILLER = [
    *("the", "of", "and", "to", "in", "for", "that", "is", "on", "with", "as", "by"),
    *("report", "meeting", "agency", "client", "review"),
]


def _rss_mb() -> float:
    """Current resident set size of this process, from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _names(rng: random.Random, count: int) -> list[str]:
    return [
        "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize() for _ in range(count)
    ]


def write_records(path: Path, n: int, seed: int = 1) -> None:
    """A records CSV of ``n`` synthetic clients."""
    rng = random.Random(seed)
    given, family = _names(rng, 3000), _names(rng, 20000)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for i in range(n):
            writer.writerow(
                [
                    f"CL{10_000_000 + i}",
                    f"{rng.choice(given)} {rng.choice(family)}",
                    f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(1930, 2015)}",
                    f"CASE-{rng.randint(2010, 2025)}-{rng.randint(0, 9_999_999):07d}",
                ]
            )


def scan_text(records: Path, megabytes: float, seed: int = 2) -> tuple[str, int]:
    """Prose-like text of the given size with names, dates and ids, and some records' name+DOB embedded."""
    rng = random.Random(seed)
    with records.open(newline="", encoding="utf-8") as handle:
        rows = [row for i, row in enumerate(csv.DictReader(handle)) if i % 10_000 == 0]
    words = FILLER * 3 + _names(rng, 500)
    parts: list[str] = []
    size, embedded = 0, 0
    while size < megabytes * 1_000_000:
        if rng.random() < 0.002 and rows:
            row = rng.choice(rows)
            part = f"client {row['full_name']} born {row['dob']}."
            embedded += 1
        elif rng.random() < 0.02:
            date = f"{rng.randint(1, 28)}/{rng.randint(1, 12)}/{rng.randint(1930, 2015)}"
            part = f"{date} ref CL{rng.randint(0, 99_999_999)}"
        else:
            part = " ".join(rng.choice(words) for _ in range(12)) + "."
        parts.append(part)
        size += len(part) + 1
    return " ".join(parts), embedded


def measure_load(index: Path, records: Path, megabytes: float) -> dict[str, float]:
    """Load the index in this (fresh) process and time lookups and scans."""
    before = _rss_mb()
    started = time.perf_counter()
    recognizer = EdmRecognizer(index)
    load_s = time.perf_counter() - started
    after = _rss_mb()
    idx = recognizer.index

    rng = np.random.default_rng(3)
    probes = np.concatenate(
        [rng.integers(0, 2**63, 900_000, dtype=np.uint64), idx.keys[:: max(1, len(idx.keys) // 100_000)]]
    )
    started = time.perf_counter()
    idx.lookup(probes)
    lookup_ns = (time.perf_counter() - started) / len(probes) * 1e9

    keys = [f"t:value{i}" for i in range(200_000)]
    started = time.perf_counter()
    idx.hasher.hashes(keys)
    hash_ns = (time.perf_counter() - started) / len(keys) * 1e9

    text, embedded = scan_text(records, megabytes)
    started = time.perf_counter()
    results = recognizer.analyze(text, ["EDM_MATCH"])
    scan_s = time.perf_counter() - started
    return {
        "load_seconds": round(load_s, 3),
        "rss_before_load_mb": round(before, 1),
        "rss_after_load_mb": round(after, 1),
        "index_rss_mb": round(after - before, 1),
        "lookup_ns_per_candidate": round(lookup_ns, 1),
        "hash_ns_per_candidate": round(hash_ns, 1),
        "scan_text_mb": round(len(text.encode()) / 1e6, 2),
        "scan_seconds": round(scan_s, 3),
        "scan_mb_per_s": round(len(text.encode()) / 1e6 / scan_s, 2),
        "scan_records_embedded": embedded,
        "scan_matches": len(results),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--text-mb", type=float, default=1.0)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--measure-load", type=Path, help=argparse.SUPPRESS)  # child process mode
    parser.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure_load:
        print(json.dumps(measure_load(args.measure_load, args.csv, args.text_mb)))
        return 0

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        records, index = Path(tmp) / "records.csv", Path(tmp) / "records.edm"
        started = time.perf_counter()
        write_records(records, args.records)
        generate_s = time.perf_counter() - started
        stats = build_index(records, COLUMNS, index, require=2)
        build_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        child = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.edm_scale",
                "--measure-load",
                str(index),
                "--csv",
                str(records),
                "--text-mb",
                str(args.text_mb),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        report = {
            "records": stats.records,
            "entries": stats.entries,
            "generate_seconds": round(generate_s, 2),
            "build_seconds": round(stats.seconds, 2),
            "build_peak_rss_mb": round(build_peak_mb, 1),
            "csv_mb": round(records.stat().st_size / 1e6, 1),
            "index_mb": round(stats.index_bytes / 1e6, 1),
            **json.loads(child.stdout),
        }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
