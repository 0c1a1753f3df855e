"""Detection throughput: the fast path (prefilter + windows) against plain Presidio, side by side.

Everything runs in one process (one core), on the same generated text, in one run:

0. stock Presidio's pattern recognisers against the fast path (with the gateway's findings limit);
1. each recogniser's own cost on 100 KB, over the whole text (plain) and on its windows;
2. the prefilter pass alone with Hyperscan, google-re2, pyahocorasick and Python ``re``;
3. fast vs plain from 1 KB to 20 MB (plain only up to ``--plain-max``), ms per KB, MB/s,
   and whether both found the same findings;
4. spaCy NER (when the ``ner`` extra is installed): its cost per message, unbounded vs bounded.

    .venv/bin/python bench/throughput.py [--sizes 1K,10K,100K,1M,5M,20M] [--plain-max 1M]
                                         [--density 0.02] [--repeat 3]

Printed values are counts and timings only, never detected values.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import spacy
import tldextract
from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
from presidio_analyzer.nlp_engine import SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import EmailRecognizer, SpacyRecognizer

from bench.attachments import valid_tfn
from detectors import prefilter
from detectors.budget import FindingBudget
from detectors.config import DetectorConfig
from detectors.engine import NER_BUDGET_CHARS, Detector, FastPath, build_analyzer, ner_available
from detectors.result_cache import ResultCache
from gateway.model import Finding, Segment

_SUFFIXES = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
# Numbers in filler sentences are drawn afresh each time (no two messages alike).
FILLER = (
    "The quarterly planning meeting moves to Thursday at {h}:30 in room {n}.",
    "Please review the attached budget figures before our call on {d}/{m}/2024.",
    "Invoice 2024-{i} for ${k},500.00 was approved by the steering committee.",
    "Stakeholder feedback on program delivery is summarised in section {n}.2 of the paper.",
    "The minister's office asked for a brief by COB Friday {d} March 2024.",
    "Reference REF-2024-{r} covers the 2023-24 financial year and the forward estimates.",
    "Thanks everyone for the productive workshop yesterday; notes are on the shared drive.",
    "We expect the procurement panel to report back in the second week of April.",
    "Kind regards, Alex Taylor, Director Program Delivery, Department of Examples.",
    "Let me know if you have any questions about the revised timeline or the risks.",
)
PLANTED = (
    "My tax file number is 123 456 782, please update payroll.",
    "Supplier ABN: 51 824 753 556 (GST registered).",
    "Medicare card 2123 45670 1, IRN 1.",
    "Card number 4111 1111 1111 1111 expires 09/27.",
    "Pay to BSB 062-000 account 12345678 by direct credit.",
    "Passport number PA1234567 was sighted.",
    "Call me on 0412 345 678 or +61 2 6123 4567.",
    "Email jane.citizen@agency.gov.au for the file.",
    "\nOFFICIAL: Sensitive\n",
    "This document is Cabinet-in-Confidence.",
    "Dr Nguyen's cancer diagnosis was discussed.",
    "password: Hunter2Hunter2x",
    "Server at 10.0.12.7 is down.",
)
# Repeated timings of one text would otherwise be answered from the findings cache.
NO_CACHE = ResultCache(entries=0)
SIZES = {"K": 1024, "M": 1024 * 1024}


PROSE = tuple(f for f in FILLER if "{" not in f)


def business_text(size: int, density: float, seed: int = 1, numbers: bool = True) -> str:
    """English business-email sentences; each is a planted item with probability ``density``.

    Without ``numbers`` only sentences without number-like tokens are used: the
    floor set by the prefilter and window bookkeeping alone.
    """
    rng = random.Random(seed)
    parts: list[str] = []
    length = 0
    pool = FILLER if numbers else PROSE
    while length < size:
        if rng.random() < density:
            sentence = rng.choice(PLANTED)
        else:
            sentence = rng.choice(pool).format(
                h=rng.randint(9, 17),
                n=rng.randint(1, 9),
                d=rng.randint(1, 28),
                m=rng.randint(1, 12),
                i=f"{rng.randint(0, 99999):05d}",
                k=rng.randint(1, 99),
                r=f"{rng.randint(0, 9999):04d}",
            )
        parts.append(sentence + rng.choice((" ", " ", " ", "\n", "\n\n")))
        length += len(parts[-1])
    return "".join(parts)[:size]


def records_text(size: int, seed: int = 3) -> str:
    """Tab-separated client records, as a spreadsheet export reads: e-mail, mobile and TFN on every row."""
    rng = random.Random(seed)
    rows: list[str] = []
    length = 0
    i = 0
    while length < size:
        i += 1
        born = f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/19{rng.randint(40, 99)}"
        mobile = f"04{rng.randint(10, 99)} {rng.randint(100, 999)} {rng.randint(100, 999)}"
        address = f"{rng.randint(1, 200)} George St, Sydney NSW 2000"
        tfn = valid_tfn(rng)
        row = f"CL-{100000 + i}\tSam Lee\t{born}\tsam.lee{i}@example.com\t{mobile}\t{tfn}\t{address}\n"
        rows.append(row)
        length += len(row)
    return "".join(rows)[:size]


def parse_size(label: str) -> int:
    label = label.strip().upper()
    return int(float(label[:-1]) * SIZES[label[-1]]) if label[-1] in SIZES else int(label)


def best(fn: Callable[[], object], repeat: int) -> float:
    """Fastest of ``repeat`` runs, in seconds (the least disturbed by the machine)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def keyed(findings: list[Finding]) -> list[tuple[str, int, int, float]]:
    return sorted((f.entity_type, f.start, f.end, round(f.score, 6)) for f in findings)


# --- 0. against stock Presidio -----------------------------------------------------------


def stock_analyzer() -> AnalyzerEngine:
    """Presidio's predefined recognisers without NER, as an agency would start from.

    Two changes, neither of which makes it slower: spaCy NER is left out (pattern
    recognisers only) and e-mail addresses are checked against tldextract's bundled
    suffix list, because the stock one fetches the list over the network.
    """

    class BundledSuffixEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return bool(_SUFFIXES(pattern_text).fqdn)

    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(languages=["en"])
    for recognizer in list(registry.recognizers):
        if isinstance(recognizer, SpacyRecognizer | EmailRecognizer):
            registry.remove_recognizer(recognizer.name)
    registry.add_recognizer(BundledSuffixEmailRecognizer())
    engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": "en"}])
    engine.nlp = {"en": spacy.blank("en")}  # type: ignore[assignment]
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["en"])


def against_stock(fast: Detector, density: float, repeat: int) -> None:
    """Detection MB/s of stock Presidio and of the fast path on the same texts, in this run."""
    stock = stock_analyzer()
    print("\n## 0. Stock Presidio (pattern recognisers) and the fast path, same text, one core\n")
    print("| text | size | stock Presidio MB/s | fast path MB/s | fast path / stock |")
    print("|---|---|---:|---:|---:|")
    larger = (100 * 1024, 900 * 1024, 1024 * 1024)
    texts: list[tuple[str, Callable[[int], str], tuple[int, ...]]] = [
        ("prose", lambda n: business_text(n, 0.0, numbers=False), larger),
        (f"business, {density:.0%} planted", lambda n: business_text(n, density), larger),
        ("client records", records_text, (100 * 1024,)),  # stock: minutes per MB
    ]
    for name, make, sizes in texts:
        for size in sizes:
            text = make(size)
            fast_s = best(lambda t=text: fast.analyze([Segment("body", t)]), repeat)
            try:
                stock_s = best(lambda t=text: stock.analyze(t, language="en"), 1)
            except ValueError:  # spaCy refuses a text over nlp.max_length (1,000,000 characters)
                print(
                    f"| {name} | {label(size)} | fails (spaCy max_length) | {size / fast_s / 1e6:,.1f} | – |"
                )
                continue
            print(
                f"| {name} | {label(size)} | {size / stock_s / 1e6:.2f} | {size / fast_s / 1e6:,.1f} "
                f"| {stock_s / fast_s:,.0f}× |"
            )


# --- 1. per recogniser ------------------------------------------------------------------


def per_recognizer(fast: FastPath, text: str, repeat: int) -> None:
    print(f"\n## 1. Each recogniser on {len(text) // 1024} KB (ms): whole text vs its windows\n")
    print("| recogniser | whole text | fast path | strategy |")
    print("|---|---:|---:|---|")
    hits = fast.scanner.scan(prefilter.scan_bytes(text))
    wanted = fast.supported
    whole_total = fast_total = 0.0
    for group in fast.groups:
        recognizer = group.recognizer
        ends = hits.ends(group.first, group.count)
        whole = best(lambda r=recognizer: r.analyze(text, wanted, None), repeat)
        if isinstance(group.spec, prefilter.Anchored):
            windowed = best(lambda g=group, e=ends: fast._anchored(g, text, e, wanted, None), repeat)
            strategy = f"anchored ({len(group.spec.anchors)} words)"
        else:
            spec = group.spec
            windowed = best(
                lambda g=group, s=spec, e=ends: fast._windowed(g, s, text, e, wanted, FindingBudget(), 0.0),
                repeat,
            )
            spans = prefilter.windows(zip(spec.triggers, ends, strict=True), len(text))
            strategy = f"{len(spans)} windows, {sum(h - lo for lo, h in spans) * 100 // len(text)}% of text"
        whole_total += whole
        fast_total += windowed
        print(f"| {type(recognizer).__name__} | {whole * 1000:.1f} | {windowed * 1000:.2f} | {strategy} |")
    for recognizer in fast.whole_text:
        whole = best(lambda r=recognizer: r.analyze(text, wanted, None), repeat)
        print(f"| {type(recognizer).__name__} | {whole * 1000:.1f} | {whole * 1000:.1f} | whole text |")
    nlp = best(lambda: fast.analyzer.nlp_engine.process_text(text[:100_000], "en"), repeat)
    scan = best(lambda: fast.scanner.scan(prefilter.scan_bytes(text)), repeat)
    print(f"| (spaCy tokenising, plain path only) | {nlp * 1000:.1f} | – | |")
    print(f"| (prefilter pass, fast path only) | – | {scan * 1000:.2f} | {fast.scanner.backend} |")
    print(f"| **total** | **{(whole_total + nlp) * 1000:.1f}** | **{(fast_total + scan) * 1000:.2f}** | |")


# --- 2. prefilter engines ---------------------------------------------------------------


def prefilter_engines(fast: FastPath, text: str, repeat: int) -> None:
    data = prefilter.scan_bytes(text)
    triggers = fast.scanner.whole._compiled.triggers
    mb = len(data) / 1e6
    print(f"\n## 2. The prefilter pass alone: {len(triggers)} triggers over {mb:.1f} MB\n")
    print("| engine | ms | MB/s | note |")
    print("|---|---:|---:|---|")
    rows: list[tuple[str, float, str]] = []
    encode = best(lambda: prefilter.scan_bytes(text), repeat)
    rows.append(("text → bytes (scan_bytes)", encode, "needed by every engine"))
    if prefilter.hyperscan is not None:
        rows.append(
            ("hyperscan (one database)", best(lambda: fast.scanner.scan(data), repeat), "all triggers")
        )
    python = prefilter.Prefilter(triggers, use_hyperscan=False)
    sample = data[: len(data) // 8]  # about a minute for all of it: time an eighth, scale up
    rows.append(
        ("Python re, one pattern per trigger", best(lambda: python.scan(sample), 1) * 8, "all triggers")
    )
    try:
        import re2

        patterns = [
            re2.compile(("(?i)" if t.caseless else "") + t.pattern.encode("latin-1").decode("latin-1"))
            for t in triggers
        ]
        latin = data.decode("latin-1")
        rows.append(
            (
                "google-re2, one pattern per trigger",
                best(lambda: [list(p.finditer(latin)) for p in patterns], 1),
                "non-overlapping matches",
            )
        )
    except ImportError:
        rows.append(("google-re2", float("nan"), "not installed"))
    try:
        import ahocorasick

        automaton = ahocorasick.Automaton()
        words = [
            t.pattern
            for t in triggers
            if re.escape(t.pattern) == re.escape(re.sub(r"\\(.)", r"\1", t.pattern))
        ]
        for i, word in enumerate({re.sub(r"\\(.)", r"\1", w).lower() for w in words}):
            automaton.add_word(word, i)
        automaton.make_automaton()
        lowered = data.decode("latin-1").lower()
        rows.append(
            (
                "pyahocorasick (literal triggers only)",
                best(lambda: sum(1 for _ in automaton.iter(lowered)), repeat),
                f"{len(words)} of {len(triggers)} triggers; shapes need a regex engine",
            )
        )
    except ImportError:
        rows.append(("pyahocorasick", float("nan"), "not installed"))
    for name, seconds, note in rows:
        print(f"| {name} | {seconds * 1000:.1f} | {mb / seconds:,.0f} | {note} |")


# --- 3. fast vs plain by size -------------------------------------------------------------


def by_size(
    fast: Detector,
    plain: Detector,
    sizes: list[int],
    plain_max: int,
    kind: str,
    make: Callable[[int], str],
    repeat: int,
) -> None:
    print(f"\n## 3. Fast path vs plain Presidio by size: {kind}\n")
    print("| size | fast ms | fast ms/KB | fast MB/s | plain ms | plain MB/s | speed-up | same findings |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for size in sizes:
        text = make(size)
        segments = [Segment("body", text)]
        runs = repeat if size <= 1024 * 1024 else 1
        fast_s = best(lambda s=segments: fast.analyze(s), runs)
        if size < SAMPLED_BELOW:
            fast_s = sampled(fast, make, size, runs)
        per_kb = fast_s * 1000 / (size / 1024)
        row = f"| {label(size)} | {fast_s * 1000:,.1f} | {per_kb:.4f} | {size / fast_s / 1e6:,.1f} |"
        if size <= plain_max:
            plain_s = best(lambda s=segments: plain.analyze(s), 1 if size > 100 * 1024 else runs)
            same = (
                keyed(fast.analyze(segments)) == keyed(plain.analyze(segments))
                if size <= 100 * 1024
                else None
            )
            same_text = "n/a (plain chunks)" if same is None else ("yes" if same else "**NO**")
            speedup = plain_s / fast_s
            row += f" {plain_s * 1000:,.1f} | {size / plain_s / 1e6:.2f} | {speedup:,.0f}× | {same_text} |"
        else:
            row += " – | – | – | – |"
        print(row)


# A small text is one sample of the stream: its cost depends on which sentences it drew.
# Below this size the fast path is timed over as many different texts as fill it.
SAMPLED_BELOW = 64 * 1024


def sampled(detector: Detector, make: Callable[[int], str], size: int, repeat: int) -> float:
    """Mean seconds per text over ``SAMPLED_BELOW // size`` consecutive pieces of the stream."""
    stream = make(SAMPLED_BELOW)
    pieces = [[Segment("body", stream[i : i + size])] for i in range(0, SAMPLED_BELOW, size)]
    total = best(lambda: [detector.analyze(piece) for piece in pieces], repeat)
    return total / len(pieces)


def label(size: int) -> str:
    return f"{size // (1024 * 1024)} MB" if size >= 1024 * 1024 else f"{size // 1024} KB"


# --- 4. NER -----------------------------------------------------------------------------


def ner_cost(repeat: int) -> None:
    print("\n## 4. spaCy NER (only when the policy names an NER entity type)\n")
    if not ner_available():
        print("NER model package not installed: skipped.")
        return
    started = time.perf_counter()
    with_ner = build_analyzer(DetectorConfig(ner=True))
    print(f"NER engine built in {time.perf_counter() - started:.2f} s; NER reads at most")
    print(f"{NER_BUDGET_CHARS:,} characters of a message (fast path); the plain path reads all of it.\n")
    fast, plain = Detector(with_ner, cache=NO_CACHE), Detector(with_ner, fast=False)
    without = Detector(build_analyzer(DetectorConfig()), cache=NO_CACHE)
    print("| size | fast, no NER ms | fast + bounded NER ms | NER share ms | plain + NER ms |")
    print("|---|---:|---:|---:|---:|")
    for size in (5 * 1024, 100 * 1024, 1024 * 1024):
        segments = [Segment("body", business_text(size, 0.02))]
        base = best(lambda s=segments: without.analyze(s), repeat)
        ner = best(lambda s=segments: fast.analyze(s), repeat)
        plain_s = best(lambda s=segments: plain.analyze(s), 1) if size <= 100 * 1024 else float("nan")
        print(
            f"| {label(size)} | {base * 1000:,.0f} | {ner * 1000:,.0f} | {(ner - base) * 1000:,.0f} "
            f"| {plain_s * 1000:,.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1K,10K,100K,1M,5M,20M")
    parser.add_argument("--plain-max", default="1M", help="largest size the plain path is timed on")
    parser.add_argument(
        "--density", type=float, default=0.02, help="share of sentences that are planted items"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-ner", action="store_true")
    parser.add_argument("--only-ner", action="store_true")
    args = parser.parse_args()
    if args.only_ner:
        ner_cost(args.repeat)
        return
    started = time.perf_counter()
    analyzer = build_analyzer(DetectorConfig())
    print(f"engine built in {time.perf_counter() - started:.2f} s")
    fast, plain = Detector(analyzer, cache=NO_CACHE), Detector(analyzer, fast=False)
    assert fast._fast_path is not None
    print(f"# Detection throughput, one core; prefilter backend: {fast._fast_path.scanner.backend}")
    limited = Detector(analyzer, max_per_type=DetectorConfig().max_findings_per_type, cache=NO_CACHE)
    against_stock(limited, args.density, args.repeat)
    per_recognizer(fast._fast_path, business_text(100 * 1024, args.density), args.repeat)
    prefilter_engines(fast._fast_path, business_text(4 * 1024 * 1024, args.density), args.repeat)
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    plain_max, density = parse_size(args.plain_max), args.density
    kinds: list[tuple[str, Callable[[int], str]]] = [
        ("prose, no planted items", lambda n: business_text(n, 0.0, numbers=False)),
        (
            f"prose, planted items in {density:.0%} of sentences",
            lambda n: business_text(n, density, numbers=False),
        ),
        ("business sentences with dates, amounts, references", lambda n: business_text(n, 0.0)),
        (f"business sentences, planted items in {density:.0%}", lambda n: business_text(n, density)),
    ]
    for kind, make in kinds:
        by_size(fast, plain, sizes, plain_max, kind, make, args.repeat)
    # A spreadsheet export: every row holds identifiers; the gateway's per-type findings limit
    # (scan.max_findings_per_type) is what bounds it, so it is on here.
    by_size(
        limited,
        plain,
        sizes,
        min(plain_max, 100 * 1024),
        f"client records (every row an e-mail, mobile, TFN), findings limit {limited.max_per_type}/type",
        records_text,
        args.repeat,
    )
    if not args.skip_ner:
        ner_cost(args.repeat)


if __name__ == "__main__":
    main()
