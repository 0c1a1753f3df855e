"""The fast path (prefilter + windows) finds exactly what the plain Presidio path finds.

Every comparison runs both paths of one analyzer over the same text: generated
business text with planted identifiers, markings, secrets, phrases and
awkward Unicode, then samples of the shared corpora when they are present.
"""

from __future__ import annotations

import base64
import itertools
import json
import random
import string
from collections.abc import Iterator
from pathlib import Path

import pytest

from detectors import prefilter
from detectors.config import DetectorConfig
from detectors.engine import Detector, FastPath, build_analyzer, ner_available
from gateway.model import Finding, Segment
from gateway.parse import parse_message

SHARED = Path(__file__).resolve().parents[3] / "shared" / "corpora"
RNG = random.Random(8)
Key = tuple[str, str, int, int, float, tuple[tuple[str, str], ...]]


def keyed(findings: list[Finding]) -> list[Key]:
    return sorted(
        (f.entity_type, f.location, f.start, f.end, round(f.score, 6), tuple(sorted(f.attributes.items())))
        for f in findings
    )


@pytest.fixture(scope="module")
def detectors() -> tuple[Detector, Detector, Detector]:
    """(fast with Hyperscan, fast with Python re only, plain) over one analyzer."""
    analyzer = build_analyzer(DetectorConfig())
    fast = Detector(analyzer)
    fallback = Detector(analyzer)
    fallback._fast_path = FastPath.build(analyzer, use_hyperscan=False)
    return fast, fallback, Detector(analyzer, fast=False)


def assert_same(detectors: tuple[Detector, ...], segments: list[Segment]) -> int:
    fast, fallback, plain = detectors
    expected = keyed(plain.analyze(segments))
    assert keyed(fast.analyze(segments)) == expected
    assert keyed(fallback.analyze(segments)) == expected
    return len(expected)


# --- generated text ----------------------------------------------------------------------

FILLER = (
    "The quarterly planning meeting moves to Thursday at 10:30 in room 4.",
    "Please review the attached budget figures before our call on 12/03/2024.",
    "Invoice 2024-00123 for $12,500.00 was approved by the steering committee.",
    "Stakeholder feedback on program delivery is summarised in section 3.2.",
    "The minister's office asked for a brief by COB Friday 15 March 2024.",
    "Reference REF-2024-0042 covers the 2023-24 financial year.",
)
PLANTED = (
    "My tax file number is 123 456 782, please update payroll.",
    "TFN 876543210 and ACN 004 085 616 for the trustee company Pty Ltd.",
    "Supplier ABN: 51 824 753 556 (GST registered).",
    "Tracking 51824753556 shipped today.",
    "Medicare card 2123 45670 1, IRN 1.",
    "Her IHI is 8003 6012 3456 7893 per My Health Record.",
    "Card number 4111 1111 1111 1111 expires 09/27, CVV 123.",
    "Pay to BSB 062-000 account 12345678 by direct credit.",
    "Passport number PA1234567 was sighted.",
    "Driver licence 123 456 789 (NSW).",
    "DVA file number NX123456 for the gold card holder.",
    "Centrelink CRN 123 456 789A on the health care card.",
    "Call me on 0412 345 678 or +61 2 6123 4567.",
    "Email jane.citizen@agency.gov.au or j_smith@example.com.",
    "Server at 10.0.12.7 and fe80::1ff:fe23:4567:890a.",
    "IBAN GB82 WEST 1234 5698 7654 32 for the transfer.",
    "\nOFFICIAL: Sensitive\n",
    "\nPROTECTED//CABINET\nAUSTEO\n",
    "This is SECRET//AUSTEO material.",
    "X-Protective-Marking: VER=2018.4, NS=gov.au, SEC=PROTECTED, CAVEAT=SH:CABINET, ORIGIN=a@b.gov.au",
    "Subject: budget [SEC=OFFICIAL:Sensitive]",
    "> PROTECTED\n> quoted banner",
    "This document is Cabinet-in-Confidence and not for public release.",
    "Legal professional privilege applies; draft only.",
    "Dr Nguyen's cancer diagnosis was discussed.",
    "Mr Smith has a criminal record.",
    "password: Hunter2Hunter2x",
    "The api_key = 'sk9Fh3kLq0Zx8Pm2Tr7v' was rotated.",
    "Use ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8 to push.",
    "AKIAIOSFODNN7ABCDEFG is the key id",
    "Server=db01;User Id=app;Password=S3cr3t!Pass;",
    "postgres://admin:Tr0ub4dor3@db.internal:5432/app",
)


def _jwt() -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    sig = "".join(RNG.choice(string.ascii_letters + string.digits) for _ in range(43))
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'sub': '1234567890'})}.{sig}"


def _private_key() -> str:
    body = "\n".join(
        "".join(RNG.choice(string.ascii_letters + string.digits + "+/") for _ in range(64)) for _ in range(8)
    )
    return f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"


def business_text(size: int, density: float, rng: random.Random) -> str:
    """Filler sentences with planted items (probability ``density`` per sentence)."""
    parts: list[str] = []
    length = 0
    while length < size:
        if rng.random() < density:
            extra = rng.choice((*PLANTED, _jwt(), _private_key()))
        else:
            extra = rng.choice(FILLER)
        sep = rng.choice((" ", " ", "\n", "\n\n"))
        parts.append(extra + sep)
        length += len(extra) + 1
    return "".join(parts)


@pytest.mark.parametrize("seed", range(12))
def test_generated_text(detectors: tuple[Detector, ...], seed: int) -> None:
    rng = random.Random(seed)
    text = business_text(rng.choice((600, 3000, 20_000)), 0.35, rng)
    assert assert_same(detectors, [Segment("body", text)]) > 0


@pytest.mark.parametrize("planted", PLANTED)
def test_each_planted_item(detectors: tuple[Detector, ...], planted: str) -> None:
    text = f"{FILLER[0]} {planted} {FILLER[1]}"
    assert_same(detectors, [Segment("body", text), Segment("subject", planted)])


def test_quoted_history_and_disclaimers_keep_document_context(detectors: tuple[Detector, ...]) -> None:
    head = " ".join(FILLER * 40)  # the history starts far before the phrase
    text = (
        f"Thanks, see below.\n\n-----Original Message-----\nFrom: a\nSent: today\n{head}\n"
        "This is Cabinet-in-Confidence material. Dr Nguyen has cancer.\n"
        "--\nThis email may contain legally privileged information. If you are not the intended "
        "recipient, do not forward it.\n"
    )
    analyzer = detectors[0].analyzer
    fast, plain = Detector(analyzer, min_score=0.1), Detector(analyzer, min_score=0.1, fast=False)
    expected = keyed(plain.analyze([Segment("body", text)]))
    assert "quoted" in {dict(k[5]).get("region") for k in expected}
    assert keyed(fast.analyze([Segment("body", text)])) == expected


UNICODE = (
    "TFN １２３ ４５６ ７８２ in full-width digits",
    "tax\u00a0file number 123\u00a0456\u00a0782",
    "pass\u017fword: Hunter2Hunter2x",  # long s, equal to s under IGNORECASE
    "TO\u212aEN = abcdef0123456789XYZ",  # Kelvin sign
    "电话 0412 345 678 电邮 张@example.com",
    "OFFICIAL: Sensitive – NSW Cabinet",
    "Dvořák’s medicare number 2123 45670 1",
    "\u200b0412\u200b345\u200b678",
    "İstanbul office IBAN TR33 0006 1005 1978 6457 8413 26",
)


@pytest.mark.parametrize("text", UNICODE)
def test_unicode(detectors: tuple[Detector, ...], text: str) -> None:
    assert_same(detectors, [Segment("body", f"{FILLER[2]}\n{text}\n{FILLER[3]}")])


def test_entity_filter(detectors: tuple[Detector, ...]) -> None:
    fast, _, plain = detectors
    text = business_text(5000, 0.5, random.Random(99))
    for entities in (["AU_TFN"], ["PHONE_NUMBER", "SECRET"], ["CONFIDENTIAL_PHRASE"]):
        expected = keyed(plain.analyze([Segment("b", text)], entities))
        assert keyed(fast.analyze([Segment("b", text)], entities)) == expected


def test_agency_recognisers(tmp_path: Path) -> None:
    (tmp_path / "agency.yaml").write_text(
        "recognizers:\n"
        "  - name: case number\n"
        "    supported_entity: AGENCY_CASE\n"
        "    patterns:\n"
        "      - {name: case, regex: '\\bCASE-\\d{4}-\\d{6}\\b', score: 0.5}\n"
        "    context: [matter, file]\n"
        "  - name: staff id\n"
        "    supported_entity: STAFF_ID\n"
        "    patterns:\n"
        "      - {name: staff, regex: '(?<=staff )\\w{2}\\d{5}', score: 0.6}\n"
        "  - name: project words\n"
        "    supported_entity: PROJECT\n"
        "    deny_list: [Bluebird, Nightjar]\n",
        encoding="utf-8",
    )
    analyzer = build_analyzer(DetectorConfig(recognizers_dir=tmp_path))
    fast, plain = Detector(analyzer), Detector(analyzer, fast=False)
    text = (
        "The matter file is CASE-2024-000123 and case-2023-999999.\n"
        "Ask staff AB12345 about project Bluebird.\n" + " ".join(FILLER * 3) + "\nCASE-2024-000777 alone."
    )
    expected = keyed(plain.analyze([Segment("b", text)]))
    assert {k[0] for k in expected} >= {"AGENCY_CASE", "STAFF_ID", "PROJECT"}
    assert keyed(fast.analyze([Segment("b", text)])) == expected


def test_long_text_and_empty(detectors: tuple[Detector, ...]) -> None:
    fast, _, plain = detectors
    assert fast.analyze([Segment("b", "")]) == []
    text = business_text(90_000, 0.05, random.Random(5))  # under the plain path's chunk size
    assert keyed(fast.analyze([Segment("b", text)])) == keyed(plain.analyze([Segment("b", text)]))


# --- prefilter unit checks ---------------------------------------------------------------


def test_scan_bytes_is_one_byte_per_character() -> None:
    text = "a\u212a\u017f１\u3000电\U0001f600é\x00"
    data = prefilter.scan_bytes(text)
    assert len(data) == len(text)
    assert data == b"aks1 " + prefilter.PLACEHOLDER.encode() * 2 + "é".encode("latin-1") + b"\x00"


def test_every_builtin_trigger_runs_in_hyperscan(detectors: tuple[Detector, ...]) -> None:
    fast = detectors[0]._fast_path
    assert fast is not None
    if prefilter.hyperscan is None:
        pytest.skip("hyperscan is not installed")
    assert fast.scanner.backend == "hyperscan"
    assert not fast.with_nlp  # every registered recogniser has a spec


def test_windows_merge_and_snap() -> None:
    trigger = prefilter.Trigger("x", 1, 2, 2)
    assert prefilter.windows([(trigger, [5, 7, 20])], 30) == [(2, 9), (17, 22)]
    text = "aaaa\nbbxbb\ncccc"
    assert prefilter.windows([(trigger, [8])], len(text), text) == [(5, 10)]


# --- shared corpora ----------------------------------------------------------------------


def _sample(folder: Path, limit: int) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix not in (".md", ".tsv"))
    return random.Random(3).sample(files, min(limit, len(files)))


def _messages(limit: int) -> Iterator[tuple[str, list[Segment]]]:
    for path in _sample(SHARED / "benign_baseline", limit):
        parsed = parse_message(path.read_bytes())
        yield path.name, list(parsed.segments)


@pytest.mark.skipif(not (SHARED / "benign_baseline").is_dir(), reason="shared benign corpus not present")
def test_benign_corpus_sample(detectors: tuple[Detector, ...]) -> None:
    found = 0
    for _name, segments in _messages(120):
        found += assert_same(detectors, segments)
    assert found > 0


@pytest.mark.skipif(not (SHARED / "pii_labeled").is_dir(), reason="shared labelled corpus not present")
def test_pii_labeled_sample(detectors: tuple[Detector, ...]) -> None:
    texts: list[str] = []
    cases = SHARED / "pii_labeled" / "presidio_analyzer_tests" / "EXTRACTED_parametrize_cases.jsonl"
    if cases.is_file():
        lines = cases.read_text(encoding="utf-8").splitlines()
        texts += [json.loads(line)["text"] for line in lines if line.strip()]
    synth = SHARED / "pii_labeled" / "presidio_research" / "data" / "synth_dataset_v2.json"
    if synth.is_file():
        records = json.loads(synth.read_text(encoding="utf-8"))
        texts += [r["full_text"] for r in random.Random(4).sample(records, min(300, len(records)))]
    if not texts:
        pytest.skip("no labelled texts found")
    segments = [Segment(f"case[{i}]", t) for i, t in enumerate(texts) if isinstance(t, str)]
    assert assert_same(detectors, segments) > 0


@pytest.mark.skipif(not ner_available(), reason="spaCy NER model (the ner extra) not installed")
def test_with_ner_within_its_budget() -> None:
    analyzer = build_analyzer(DetectorConfig(ner=True))
    fast, plain = Detector(analyzer), Detector(analyzer, fast=False)
    text = business_text(4000, 0.3, random.Random(11))  # under NER_BUDGET_CHARS: NER reads it all
    assert keyed(fast.analyze([Segment("b", text)])) == keyed(plain.analyze([Segment("b", text)]))


def test_windows_stop_growing_at_the_cap() -> None:
    trigger = prefilter.Trigger("x", 1, 10, 10)
    spans = prefilter.windows([(trigger, list(range(20, 200, 5)))], 1000, max_window=60)
    assert all(hi - lo <= 60 + 25 for lo, hi in spans) and len(spans) > 1
    assert all(b[0] <= a[1] for a, b in itertools.pairwise(spans))  # overlapping: nothing uncovered


def test_dense_records_find_every_value(detectors: tuple[Detector, ...]) -> None:
    """Thousands of numbers in a row: capped windows keep phonenumbers under its 65,535-try limit."""
    rows = [
        f"CL-{100000 + i}, Sam Lee, 0412 {i % 900 + 100} {i % 800 + 150}, tfn 123 456 782"
        for i in range(6000)
    ]
    findings = detectors[0].analyze([Segment("sheet", "\n".join(rows))], ["PHONE_NUMBER", "AU_TFN"])
    counts = {e: sum(f.entity_type == e for f in findings) for e in ("PHONE_NUMBER", "AU_TFN")}
    assert counts == {"PHONE_NUMBER": 6000, "AU_TFN": 6000}
