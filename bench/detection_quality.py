"""Detection quality of the identifier recognisers: precision and recall per entity type.

Three measurements, all through ``build_analyzer(DetectorConfig())`` + ``Detector``:

a. a labelled synthetic set generated here from business-email templates:
   checksum-valid values planted with context (positives), the same kinds of
   values without context and near-miss invalid values with context (negatives),
   plus ordinary distractor numbers;
b. external labelled cases: Presidio's own recogniser test cases (AU, credit
   card, phone, e-mail) and python-stdnum's AU ABN/ACN/TFN and IBAN number
   lists embedded in a sentence with context;
c. the false-positive rate over the benign mail corpus: messages with any
   identifier finding scoring at least the blocking threshold.

Run from the repository root::

    .venv/bin/python bench/detection_quality.py [--benign-limit N] [--threshold 0.6]

The shared folder is ``$DLP_SHARED_DIR`` (default ``<repo>/../shared``); parts b
and c are skipped with a note when it is absent.  Output never contains a full
detected value: benign hits are listed with masked excerpts.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import os
import random
import string
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectors import checksums
from detectors.config import DetectorConfig
from detectors.engine import Detector, build_analyzer
from gateway.model import Finding, Segment

REPO = Path(__file__).resolve().parents[1]
THRESHOLD = 0.6  # "blocking level": findings at or above it count as detections
DETECTION_FLOOR = 0.3  # Detector.min_score: anything reported at all
IDENTIFIER_ENTITIES = (
    "AU_TFN",
    "AU_ABN",
    "AU_ACN",
    "AU_MEDICARE",
    "AU_IHI",
    "AU_DVA",
    "AU_CRN",
    "AU_PASSPORT",
    "AU_DRIVER_LICENCE",
    "AU_BANK_ACCOUNT",
    "CREDIT_CARD",
    "IBAN_CODE",
)
BENIGN_EXCLUDE = {"MANIFEST.tsv", "SOURCES.md", "README.md", "LICENSE", "COPYING"}


def shared_dir() -> Path:
    """The shared test material folder."""
    return Path(os.environ.get("DLP_SHARED_DIR", REPO.parent / "shared"))


# --- scoring -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Label:
    """An expected finding: entity type and character span."""

    entity: str
    start: int
    end: int


@dataclass(frozen=True)
class Sample:
    """One text with the findings it should produce (possibly none)."""

    text: str
    labels: tuple[Label, ...] = ()
    kind: str = ""


@dataclass
class Tally:
    """True positives, false negatives and false positives for one entity type."""

    tp: int = 0
    fn: int = 0
    fp: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


@dataclass
class Scores:
    """Per-entity tallies for one evaluation set."""

    tallies: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    false_positive_examples: list[str] = field(default_factory=list)

    def add(self, sample: Sample, findings: list[Finding], threshold: float, entities: Iterable[str]) -> None:
        """Match findings at or above ``threshold`` against the sample's labels (overlapping spans)."""
        wanted = set(entities)
        hits = [f for f in findings if f.score >= threshold and f.entity_type in wanted]
        matched: set[int] = set()
        for label in sample.labels:
            index = _matching(label, hits)
            if index is None:
                self.tallies[label.entity].fn += 1
            else:
                self.tallies[label.entity].tp += 1
                matched.add(index)
        for index, finding in enumerate(hits):
            if index in matched or _overlaps_label(finding, sample.labels):
                continue  # a second finding on a labelled span is a duplicate, not a new error
            self.tallies[finding.entity_type].fp += 1
            if len(self.false_positive_examples) < 12:
                self.false_positive_examples.append(
                    f"{finding.entity_type} {finding.score:.2f} {finding.excerpt!r} ({sample.kind})"
                )


def _matching(label: Label, findings: list[Finding]) -> int | None:
    for index, finding in enumerate(findings):
        if finding.entity_type == label.entity and finding.start < label.end and label.start < finding.end:
            return index
    return None


def _overlaps_label(finding: Finding, labels: tuple[Label, ...]) -> bool:
    return any(
        finding.entity_type == label.entity and finding.start < label.end and label.start < finding.end
        for label in labels
    )


def evaluate(
    detector: Detector, samples: Iterable[Sample], threshold: float, entities: Iterable[str]
) -> Scores:
    """Run the detector over every sample and tally the results."""
    scores = Scores()
    wanted = tuple(entities)
    for sample in samples:
        findings = detector.analyze([Segment("body", sample.text)])
        scores.add(sample, findings, threshold, wanted)
    return scores


def print_table(title: str, scores: Scores, entities: Iterable[str] | None = None) -> None:
    """Precision/recall table, one row per entity type."""
    print(f"\n{title}")
    print(f"  {'entity':<18} {'TP':>5} {'FN':>5} {'FP':>5} {'precision':>10} {'recall':>8}")
    names = list(entities) if entities is not None else sorted(scores.tallies)
    total = Tally()
    for name in names:
        t = scores.tallies.get(name, Tally())
        if not (t.tp or t.fn or t.fp):
            continue
        total.tp, total.fn, total.fp = total.tp + t.tp, total.fn + t.fn, total.fp + t.fp
        print(f"  {name:<18} {t.tp:>5} {t.fn:>5} {t.fp:>5} {t.precision:>10.3f} {t.recall:>8.3f}")
    print(f"  {'ALL':<18} {total.tp:>5} {total.fn:>5} {total.fp:>5} ", end="")
    print(f"{total.precision:>10.3f} {total.recall:>8.3f}")
    for example in scores.false_positive_examples:
        print(f"    FP: {example}")


# --- (a) synthetic values ---------------------------------------------------------------


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _group(value: str, sizes: tuple[int, ...], rng: random.Random) -> str:
    """Write digits plain, spaced or hyphenated in the given group sizes."""
    sep = rng.choice(["", " ", " ", "-"])
    parts, pos = [], 0
    for size in sizes:
        parts.append(value[pos : pos + size])
        pos += size
    return sep.join(parts)


def _luhn_complete(base: str) -> str:
    return next(base + d for d in string.digits if checksums.luhn_valid(base + d))


def gen_tfn(rng: random.Random) -> str:
    while True:
        base = _digits(rng, 8)
        check = sum(int(d) * w for d, w in zip(base, checksums.TFN9_WEIGHTS[:8], strict=True)) % 11
        if check < 10:
            return _group(base + str(check), (3, 3, 3), rng)


def gen_abn(rng: random.Random) -> str:
    while True:
        base = _digits(rng, 9)
        for prefix in range(10, 100):
            if checksums.abn_valid(f"{prefix}{base}"):
                return _group(f"{prefix}{base}", (2, 3, 3, 3), rng)


def gen_acn(rng: random.Random) -> str:
    base = _digits(rng, 8)
    check = (10 - sum(int(d) * w for d, w in zip(base, checksums.ACN_WEIGHTS, strict=True)) % 10) % 10
    return _group(base + str(check), (3, 3, 3), rng)


def gen_medicare(rng: random.Random) -> str:
    base = rng.choice("23456") + _digits(rng, 7)
    check = sum(int(d) * w for d, w in zip(base, checksums.MEDICARE_WEIGHTS, strict=True)) % 10
    number = f"{base}{check}{rng.randint(1, 9)}"
    if rng.random() < 0.5:
        return _group(number + str(rng.randint(1, 9)), (4, 5, 1, 1), rng)
    return _group(number, (4, 5, 1), rng)


def gen_ihi(rng: random.Random) -> str:
    return _group(
        _luhn_complete(rng.choice(["800360", "800361", "800362"]) + _digits(rng, 9)), (4, 4, 4, 4), rng
    )


def gen_card(rng: random.Random) -> str:
    prefix, length = rng.choice(
        [("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("2720", 16), ("2500", 16), ("37", 15), ("34", 15)]
    )
    number = _luhn_complete(prefix + _digits(rng, length - len(prefix) - 1))
    return _group(number, (4, 6, 5) if length == 15 else (4, 4, 4, 4), rng)


def gen_dva(rng: random.Random) -> str:
    state = rng.choice("NVQWST")
    body = rng.choice([rng.choice("X ") + _digits(rng, 6), "SM" + _digits(rng, 5), "CGW" + _digits(rng, 4)])
    return state + body + rng.choice(["", "", "A", "B"])


def gen_crn(rng: random.Random) -> str:
    return _group(_digits(rng, 9), (3, 3, 3), rng).replace("-", " ") + rng.choice(string.ascii_uppercase)


def gen_passport(rng: random.Random) -> str:
    return rng.choice(["N", "E", "PA", "PB", "PE", "PU"]) + _digits(rng, 7)


def gen_licence(rng: random.Random) -> str:
    return rng.choice([_digits(rng, 8), "N" + _digits(rng, 5), _digits(rng, 10), "S" + _digits(rng, 6)])


def gen_bank(rng: random.Random) -> str:
    bsb = f"{rng.choice(['062', '732', '033', '083', '484'])}-{_digits(rng, 3)}"
    return f"{bsb} {rng.choice(['Account', 'Acc', 'A/C no.'])} {_digits(rng, rng.randint(6, 9))}"


def near_miss(value: str, valid: Callable[[str], bool]) -> str | None:
    """The value with its last digit changed, if that makes it invalid."""
    index = max(i for i, ch in enumerate(value) if ch.isdigit())
    changed = value[:index] + str((int(value[index]) + 1) % 10) + value[index + 1 :]
    return None if valid(changed) else changed


@dataclass(frozen=True)
class Kind:
    """How to make, validate and talk about one identifier."""

    entity: str
    make: Callable[[random.Random], str]
    valid: Callable[[str], bool] | None  # None: no checksum (no numeric near-miss)
    contexts: tuple[str, ...]
    bad_shapes: tuple[str, ...] = ()  # format near-misses, shown with context


KINDS = (
    Kind(
        "AU_TFN",
        gen_tfn,
        checksums.tfn_valid,
        (
            "Hi Sam,\nPlease update the payroll record for our new starter. Her tax file number is {v} "
            "and the declaration is attached.\nThanks, Priya",
            "Employee details\nName: J. Citizen\nTFN: {v}\nStart date: 3 March",
            "Could you confirm the TFN {v} on the PAYG summary before we lodge?",
            "Name\tTFN\tStart date\nJane Citizen\t{v}\t3 March",
            "New starter pack: {v} (tax file number) and super fund details below.",
        ),
    ),
    Kind(
        "AU_ABN",
        gen_abn,
        checksums.abn_valid,
        (
            "Please find our tax invoice attached. Bright Cleaning Services, ABN {v}.",
            "Supplier onboarding: Australian Business Number {v}, GST registered.",
            "Kind regards,\nAccounts team\nABN: {v}",
            "Sole trader {v} (ABN) has quoted for the fit-out.",
        ),
    ),
    Kind(
        "AU_ACN",
        gen_acn,
        checksums.acn_valid,
        (
            "The contract is with Harbour Freight Pty Ltd (ACN {v}).",
            "Trustee: Coastal Holdings Pty Limited ACN {v} as trustee for the Coastal Trust.",
            "Company number (ACN): {v}",
            "Entity | ACN\nRiverbend Pty Ltd | {v}",
        ),
    ),
    Kind(
        "AU_MEDICARE",
        gen_medicare,
        checksums.medicare_valid,
        (
            "For the claim we need the client's Medicare card number: {v}.",
            "Patient: M. Nguyen, Medicare {v}, referred by Dr Shaw.",
            "Medicare no. {v} - please check eligibility before the appointment.",
            "Client list\nName, DOB, Medicare\nA. Brown, 01/02/1980, {v}",
        ),
    ),
    Kind(
        "AU_IHI",
        gen_ihi,
        checksums.healthcare_identifier_valid,
        (
            "The patient's IHI is {v}; please upload the summary to My Health Record.",
            "Individual Healthcare Identifier: {v}",
            "Provider HPI-I {v} has been linked in the HI Service.",
        ),
    ),
    Kind(
        "CREDIT_CARD",
        gen_card,
        checksums.payment_card_valid,
        (
            "Please charge the conference fee to my credit card {v}, expiry 09/27.",
            "Card number: {v} (Visa corporate card)",
            "The Mastercard used for the booking was {v}.",
        ),
    ),
    Kind(
        "AU_DVA",
        gen_dva,
        None,
        ("The veteran's DVA file number is {v}.", "Gold Card holder, DVA {v}, needs transport."),
        ("AX123456", "NX1234567", "nx123456"),
    ),
    Kind(
        "AU_CRN",
        gen_crn,
        None,
        ("Her Centrelink CRN is {v}.", "Customer Reference Number {v} (Services Australia)."),
        ("123456789", "123 456 78A"),
    ),
    Kind(
        "AU_PASSPORT",
        gen_passport,
        None,
        ("Traveller passport number {v}, expiring 2029.", "Passport no: {v}"),
        ("PA123456", "N12345678"),
    ),
    Kind(
        "AU_DRIVER_LICENCE",
        gen_licence,
        None,
        ("As ID she provided her driver licence {v}.", "Driver's licence number: {v} (NSW)"),
        ("ABCDEF", "12345"),
    ),
    Kind(
        "AU_BANK_ACCOUNT",
        gen_bank,
        None,
        ("Please pay the refund to BSB {v}.", "Bank details for the EFT: {v}"),
        ("BSB 062 000 Account 1234",),
    ),
)

NO_CONTEXT = (
    "Your order {v} has been dispatched and should arrive on Thursday.",
    "Meeting room booking {v} is confirmed for Tuesday at 10am.",
    "Please quote reference {v} in all correspondence.",
    "Item {v} is back in stock at the warehouse.",
)
DISTRACTORS = (
    "Invoice {n} is due on the 30th. Harbour Freight Pty Ltd thanks you for your business.",
    "Your ticket {n} was updated; call 1300 555 010 for help.",
    "Conference line: 02 9876 5432, PIN {n}#.",
    "Tracking number {n} - delivery by Australia Post.",
)


def _plant(template: str, value: str, entity: str | None) -> Sample:
    start = template.index("{v}")
    text = template.replace("{v}", value)
    labels = (Label(entity, start, start + len(value)),) if entity else ()
    return Sample(text, labels)


def synthetic_samples(per_kind: int = 60, seed: int = 2024) -> list[Sample]:
    """Positives with context, values without context, near-misses with context, distractors."""
    rng = random.Random(seed)
    samples: list[Sample] = []
    for kind in KINDS:
        for i in range(per_kind):
            value = kind.make(rng)
            positive = _plant(kind.contexts[i % len(kind.contexts)], value, kind.entity)
            samples.append(Sample(positive.text, positive.labels, f"{kind.entity} with context"))
            if kind.valid is not None:
                bare = _plant(NO_CONTEXT[i % len(NO_CONTEXT)], value, None)
                samples.append(Sample(bare.text, (), f"{kind.entity} without context"))
                miss = near_miss(value, kind.valid)
                if miss is not None:
                    text = kind.contexts[i % len(kind.contexts)].replace("{v}", miss)
                    samples.append(Sample(text, (), f"{kind.entity} near-miss"))
        for i, shape in enumerate(kind.bad_shapes):
            text = kind.contexts[i % len(kind.contexts)].replace("{v}", shape)
            samples.append(Sample(text, (), f"{kind.entity} format near-miss"))
    for i in range(per_kind * 4):
        number = _digits(rng, rng.choice([6, 8, 9, 10, 11, 12]))
        samples.append(Sample(DISTRACTORS[i % len(DISTRACTORS)].replace("{n}", number), (), "distractor"))
    return samples


# --- (b) external labelled cases --------------------------------------------------------

PRESIDIO_FILES = {
    "test_au_tfn_recognizer.py": "AU_TFN",
    "test_au_abn_recognizer.py": "AU_ABN",
    "test_au_acn_recognizer.py": "AU_ACN",
    "test_au_medicare_recognizer.py": "AU_MEDICARE",
    "test_credit_card_recognizer.py": "CREDIT_CARD",
    "test_iban_recognizer.py": "IBAN_CODE",
    "test_phone_recognizer.py": "PHONE_NUMBER",
    "test_email_recognizer.py": "EMAIL_ADDRESS",
}
STDNUM_SENTENCES = {
    "test_au_abn.doctest": ("AU_ABN", "Please add the supplier, ABN {v}, to the vendor master."),
    "test_au_acn.doctest": ("AU_ACN", "The lessee is Southern Cross Pty Ltd, ACN {v}."),
    "test_au_tfn.doctest": ("AU_TFN", "For payroll, my tax file number is {v}."),
    "test_iban.doctest": ("IBAN_CODE", "Please transfer the deposit to IBAN {v} today."),
}


def presidio_samples(path: Path) -> Iterator[tuple[str, Sample]]:
    """Presidio's parametrised recogniser cases (leniency variants need another constructor: skipped)."""
    for line in path.read_text(encoding="utf-8").splitlines():
        case = json.loads(line)
        entity = PRESIDIO_FILES.get(case["file"])
        if entity is None or "leniency" in case:
            continue
        spans = case.get("expected_positions", case.get("expected_res", []))
        labels = tuple(Label(entity, start, end) for start, end in spans)
        yield entity, Sample(case["text"], labels, f"presidio {case['file']}")


def stdnum_samples(path: Path) -> Iterator[tuple[str, Sample]]:
    """python-stdnum's valid/invalid number lists embedded in a sentence with context."""
    for line in path.read_text(encoding="utf-8").splitlines():
        case = json.loads(line)
        if case["file"] not in STDNUM_SENTENCES or case["expected"] not in ("valid", "invalid"):
            continue
        entity, template = STDNUM_SENTENCES[case["file"]]
        for value in case["values"]:
            planted = _plant(template, value, entity if case["expected"] == "valid" else None)
            yield entity, Sample(planted.text, planted.labels, f"stdnum {case['file']} {case['expected']}")


# --- (c) benign mail --------------------------------------------------------------------


def message_segments(raw: bytes) -> list[Segment]:
    """Subject and readable text of a message (the gateway's parser when available)."""
    try:
        from gateway.parse import parse_message
    except ImportError:
        return _fallback_segments(raw)
    return parse_message(raw).segments


def _fallback_segments(raw: bytes) -> list[Segment]:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    segments = [Segment("subject", str(msg.get("Subject", "")))]
    for index, part in enumerate(msg.walk()):
        if part.get_content_maintype() == "text":
            try:
                segments.append(Segment(f"part[{index}]", str(part.get_content())))
            except (LookupError, ValueError):
                continue
    return segments


def benign_files(root: Path) -> list[Path]:
    """Every message file in the benign corpus."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name not in BENIGN_EXCLUDE)


@dataclass
class BenignReport:
    """False positives over the benign corpus."""

    messages: int = 0
    flagged: list[tuple[str, list[Finding]]] = field(default_factory=list)
    by_entity: Counter[str] = field(default_factory=Counter)
    low_by_entity: Counter[str] = field(default_factory=Counter)  # reported, but below the threshold
    low_flagged: list[tuple[str, list[Finding]]] = field(default_factory=list)
    other_entities: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


def scan_benign(detector: Detector, files: list[Path], threshold: float, root: Path) -> BenignReport:
    """Count messages with an identifier finding at or above ``threshold``."""
    report = BenignReport()
    started = time.perf_counter()
    for path in files:
        findings = detector.analyze(message_segments(path.read_bytes()))
        report.messages += 1
        high = [f for f in findings if f.score >= threshold]
        hits = [f for f in high if f.entity_type in IDENTIFIER_ENTITIES]
        low = [f for f in findings if f.score < threshold and f.entity_type in IDENTIFIER_ENTITIES]
        report.low_by_entity.update({f.entity_type for f in low})
        if low:
            report.low_flagged.append((str(path.relative_to(root)), low))
        report.other_entities.update(
            {f.entity_type for f in high if f.entity_type not in IDENTIFIER_ENTITIES}
        )
        if hits:
            report.flagged.append((str(path.relative_to(root)), hits))
            report.by_entity.update({f.entity_type for f in hits})
    report.seconds = time.perf_counter() - started
    return report


def print_benign(report: BenignReport, threshold: float) -> None:
    """FP rate, per-entity message counts and the flagged messages (masked)."""
    rate = len(report.flagged) / report.messages if report.messages else 0.0
    print(f"\n(c) benign baseline: {report.messages} messages in {report.seconds:.1f}s")
    print(f"  messages with an identifier finding >= {threshold}: {len(report.flagged)} ({rate:.2%})")
    for entity, count in report.by_entity.most_common():
        print(f"    {entity:<18} {count:>5} messages")
    if report.low_by_entity:
        low = ", ".join(f"{e} {n}" for e, n in report.low_by_entity.most_common())
        print(f"  messages with low-score (< {threshold}) identifier findings: {low}")
        _print_flagged(report.low_flagged[:20])
    if report.other_entities:
        others = ", ".join(f"{e} {n}" for e, n in report.other_entities.most_common())
        print(f"  (not counted: other entity types >= {threshold}, messages: {others})")
    _print_flagged(report.flagged)


def _print_flagged(flagged: list[tuple[str, list[Finding]]]) -> None:
    for name, hits in flagged:
        shown = "; ".join(f"{f.entity_type} {f.score:.2f} {f.excerpt!r} @{f.location}" for f in hits[:4])
        print(f"    {name}: {shown}")


# --- main -------------------------------------------------------------------------------


def run_external(detector: Detector, shared: Path) -> None:
    """Part b: Presidio's cases at the detection floor, stdnum lists (with context) at the threshold."""
    presidio = shared / "corpora/pii_labeled/presidio_analyzer_tests/EXTRACTED_parametrize_cases.jsonl"
    stdnum = shared / "corpora/pii_labeled/python-stdnum_doctests/EXTRACTED_number_lists.jsonl"
    if presidio.is_file():
        cases = list(presidio_samples(presidio))
        by_entity: dict[str, list[Sample]] = defaultdict(list)
        for entity, sample in cases:
            by_entity[entity].append(sample)
        scores = Scores()
        for entity, samples in by_entity.items():
            part = evaluate(detector, samples, DETECTION_FLOOR, [entity])
            for name, tally in part.tallies.items():
                scores.tallies[name] = tally
            scores.false_positive_examples.extend(part.false_positive_examples)
        print_table(
            f"(b1) Presidio recogniser test cases ({len(cases)} texts, no context; detected = score >= "
            f"{DETECTION_FLOOR})",
            scores,
        )
    else:
        print(f"\n(b1) skipped: {presidio} absent")
    if stdnum.is_file():
        cases = list(stdnum_samples(stdnum))
        scores = Scores()
        for entity in {e for e, _s in cases}:
            part = evaluate(detector, [s for e, s in cases if e == entity], THRESHOLD, [entity])
            scores.tallies.update(part.tallies)
            scores.false_positive_examples.extend(part.false_positive_examples)
        print_table(
            f"(b2) python-stdnum number lists in a sentence with context ({len(cases)} texts)", scores
        )
    else:
        print(f"\n(b2) skipped: {stdnum} absent")


def main(argv: list[str] | None = None) -> int:
    """Print every table; exit 0."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threshold", type=float, default=THRESHOLD)
    parser.add_argument("--per-kind", type=int, default=60, help="synthetic positives per entity type")
    parser.add_argument("--benign-limit", type=int, default=0, help="scan at most N benign messages (0: all)")
    args = parser.parse_args(argv)

    detector = Detector(build_analyzer(DetectorConfig()))
    samples = synthetic_samples(args.per_kind)
    entities = [k.entity for k in KINDS]
    print_table(
        f"(a) synthetic business e-mail ({len(samples)} texts; detected = score >= {args.threshold})",
        evaluate(detector, samples, args.threshold, entities),
        entities,
    )
    shared = shared_dir()
    run_external(detector, shared)
    benign_root = shared / "corpora/benign_baseline"
    if benign_root.is_dir():
        files = benign_files(benign_root)
        if args.benign_limit:
            files = files[: args.benign_limit]
        print_benign(scan_benign(detector, files, args.threshold, benign_root), args.threshold)
    else:
        print(f"\n(c) skipped: {benign_root} absent")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
