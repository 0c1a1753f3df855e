"""What keeps detection cheap without changing what it finds.

Phone-number triggers that follow libphonenumber's AU rules, context scored
from the text instead of by spaCy, disclaimer and quoted-history regions
looked for only around matches, and the per-type findings limit that bounds
a spreadsheet of records.  Each is checked against the slow, plain way of
doing the same thing.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from detectors.budget import LIMIT_ENTITY, FindingBudget
from detectors.chunked import chunks
from detectors.config import DetectorConfig
from detectors.context import CONTEXT_CHARS, boost
from detectors.engine import Detector, build_analyzer
from detectors.generic import PhoneNumberRecognizer
from detectors.phrases import _region_at, ignored_regions, load_phrases
from detectors.result_cache import ResultCache
from gateway.model import Finding, Redaction, Segment
from gateway.redact import redact_message
from tests.support import message

RNG = random.Random(25)


@pytest.fixture(scope="module")
def detectors() -> tuple[Detector, Detector]:
    """(fast, plain) over one analyzer."""
    analyzer = build_analyzer(DetectorConfig())
    return Detector(analyzer), Detector(analyzer, fast=False)


def _spans(findings: list[Finding], entity: str) -> list[tuple[int, int, float]]:
    return sorted((f.start, f.end, round(f.score, 6)) for f in findings if f.entity_type == entity)


# --- phone numbers ----------------------------------------------------------------------------

NUMBERISH = "0123456789" * 3 + "0011" + "+" * 2 + " -./()[]~" + "xX" + "ab\t\n" + "\u00a0\uff10\uff0b"
PHONE_SHAPES = (
    "0412 345 678",
    "(02) 6123 4567",
    "+61 2 6123 4567",
    "+61 (0)412 345 678",
    "61 412 345 678",
    "1300 555 010",
    "13 22 11",
    "1800 123 456",
    "0011 44 20 7123 4567",
    "+44 (20) 7123 4567",
    "+1 415 555 0132",
    "12/3/2024",
    "2024-01234",
    "CL-100000",
    "0412345678 ext. 123",
)


def _numberish(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(5, 40)):
        if rng.random() < 0.3:
            parts.append(rng.choice(PHONE_SHAPES))
        else:
            parts.append("".join(rng.choice(NUMBERISH) for _ in range(rng.randint(1, 14))))
        parts.append(rng.choice((" ", " call ", ", phone ", "\n", "; ", "/", "-")))
    return "".join(parts)


@pytest.mark.parametrize("seed", range(40))
def test_phone_triggers_miss_nothing_the_matcher_finds(
    detectors: tuple[Detector, Detector], seed: int
) -> None:
    """Random number-heavy text: the windowed phone recogniser finds what the whole-text run finds."""
    text = _numberish(random.Random(seed))
    fast, plain = detectors
    segments = [Segment("body", text)]
    expected = _spans(plain.analyze(segments, ["PHONE_NUMBER"]), "PHONE_NUMBER")
    assert _spans(fast.analyze(segments, ["PHONE_NUMBER"]), "PHONE_NUMBER") == expected


def test_phone_shapes_are_found_with_and_without_context(detectors: tuple[Detector, Detector]) -> None:
    fast, _ = detectors
    for shape in ("0412 345 678", "(02) 6123 4567", "+61 2 6123 4567", "1300 555 010", "+44 (20) 7123 4567"):
        bare = fast.analyze([Segment("b", f"Notes: {shape} and more.")], ["PHONE_NUMBER"])
        called = fast.analyze([Segment("b", f"Please call my mobile {shape} today.")], ["PHONE_NUMBER"])
        assert [f.score for f in bare] == [0.4], shape
        assert [f.score for f in called] == [0.75], shape
    dates = "Due 12/3/2024, invoice 2024-01234, client CL-100000, amount $14,500.00."
    assert fast.analyze([Segment("b", dates)], ["PHONE_NUMBER"]) == []


def test_context_is_read_from_at_most_a_fixed_reach() -> None:
    recognizer = PhoneNumberRecognizer()
    near = "phone " + "x" * 10 + " 0412 345 678"
    far = "phone " + "word " * (CONTEXT_CHARS // 5) + "0412 345 678"
    assert [r.score for r in recognizer.analyze(near, ["PHONE_NUMBER"])] == [0.75]
    assert [r.score for r in recognizer.analyze(far, ["PHONE_NUMBER"])] == [0.4]
    # Stop words do not count among the five words before a result.
    stop = "phone is the one that we have for you 0412 345 678"
    assert [r.score for r in recognizer.analyze(stop, ["PHONE_NUMBER"])] == [0.75]
    assert recognizer.context == []  # Presidio's own enhancer never runs on it
    results = recognizer.match(near, ["PHONE_NUMBER"])
    assert [r.score for r in boost(near, results, recognizer.context_words)] == [0.75]


# --- phrases: regions around matches only -----------------------------------------------------


def test_regions_found_around_matches_equal_regions_of_the_whole_text() -> None:
    dictionary = load_phrases()
    disclaimer = (
        "This email is confidential. If you are not the intended recipient, please delete it "
        "and notify the sender."
    )
    pieces = [
        "Budget figures attached.",
        "> quoted line with Cabinet-in-Confidence",
        "-----Original Message-----\nFrom: a@b.example",
        "On Tue, 3 May 2024 at 10:02, Jane wrote:",
        disclaimer,
        "--\nJane Citizen",
        "Sensitive: personal information about the client.",
        "",
    ]
    for seed in range(30):
        rng = random.Random(seed)
        text = "\n".join(rng.choice(pieces) + rng.choice(("", "\n")) for _ in range(rng.randint(3, 25)))
        spans = sorted({(s, s + rng.randint(1, 20)) for s in (rng.randrange(len(text)) for _ in range(8))})
        spans = [(s, min(e, len(text))) for s, e in spans]
        whole = ignored_regions(text, dictionary.disclaimers)
        near = ignored_regions(text, dictionary.disclaimers, spans)
        for start, end in spans:
            assert _region_at(near, start, end) == _region_at(whole, start, end), (seed, start, end)


# --- the findings limit -----------------------------------------------------------------------


def _records(count: int) -> str:
    return "\n".join(
        f"CL-{100000 + i}\tSam Lee\tsam.lee{i}@example.com\t0412 {i % 900 + 100} {i % 800 + 150}\t123 456 782"
        for i in range(count)
    )


def test_records_past_the_limit_are_cut_short_and_say_so() -> None:
    detector = Detector(build_analyzer(DetectorConfig()), max_per_type=50)
    findings = detector.analyze([Segment("sheet#Clients", _records(400))])
    counts = Counter(f.entity_type for f in findings)
    assert counts["AU_TFN"] == counts["PHONE_NUMBER"] == counts["EMAIL_ADDRESS"] == 50
    limits = {f.attributes["entity"]: f for f in findings if f.entity_type == LIMIT_ENTITY}
    assert set(limits) == {"AU_TFN", "PHONE_NUMBER", "EMAIL_ADDRESS"}
    assert all(f.attributes["limit"] == "50" and f.excerpt == "" for f in limits.values())
    # The kept findings are the first ones in the text.
    phones = [f for f in findings if f.entity_type == "PHONE_NUMBER"]
    assert max(f.start for f in phones) < len(_records(60))


def test_the_limit_spans_a_message_and_exact_counts_are_not_cut() -> None:
    detector = Detector(build_analyzer(DetectorConfig()), max_per_type=50)
    segments = [Segment(f"attachment[{i}]", _records(30)) for i in range(3)]
    findings = detector.analyze(segments, ["AU_TFN"])
    assert Counter(f.entity_type for f in findings) == {"AU_TFN": 50, LIMIT_ENTITY: 1}
    exact = detector.analyze([Segment("body", _records(50))], ["AU_TFN"])
    assert Counter(f.entity_type for f in exact) == {"AU_TFN": 50}
    unlimited = Detector(build_analyzer(DetectorConfig()), max_per_type=0)
    assert len(unlimited.analyze(segments, ["AU_TFN"])) == 90


def test_budget_keeps_document_order_and_reports_where_it_cut() -> None:
    budget = FindingBudget(limit=2)
    findings = [Finding("AU_TFN", 0.9, f"loc{i}", "•••", i, i + 1) for i in range(4)]
    kept = budget.apply(findings)
    assert [f.location for f in kept] == ["loc0", "loc1", "loc2"]
    assert kept[-1].entity_type == LIMIT_ENTITY and kept[-1].attributes == {"entity": "AU_TFN", "limit": "2"}
    assert FindingBudget(limit=0).apply(findings) == findings


def test_redaction_refuses_when_counting_stopped() -> None:
    raw = message("clients", "Client tax file number 123 456 782 for the refund.")
    tfn = Finding("AU_TFN", 0.95, "body", "•••", 23, 34)
    limit = Finding(LIMIT_ENTITY, 1.0, "body", "", attributes={"entity": "AU_TFN", "limit": "1000"})
    redactions = [Redaction(("AU_TFN",), "mask", (("masking_char", "*"),), 0.5)]
    refused = redact_message(raw, [tfn, limit], redactions)
    assert refused.raw is None and "too many AU_TFN" in refused.reason
    other = Finding(LIMIT_ENTITY, 1.0, "body", "", attributes={"entity": "PHONE_NUMBER", "limit": "1000"})
    assert redact_message(raw, [tfn, other], redactions).raw is not None


# --- the findings cache -----------------------------------------------------------------------


def test_the_same_text_again_is_answered_from_the_cache() -> None:
    detector = Detector(build_analyzer(DetectorConfig()), max_per_type=50)
    text = "Please update payroll: my tax file number is 123 456 782.\n" + "Notes follow. " * 300
    first = detector.analyze([Segment("attachment[1]:a.txt", text)])
    assert len(detector.cache._items) == 1
    again = detector.analyze([Segment("attachment[2]:b.txt", text)])
    assert [(f.entity_type, f.start, f.score) for f in again] == [
        (f.entity_type, f.start, f.score) for f in first
    ]
    assert {f.location for f in again} == {"attachment[2]:b.txt"}
    # Asked for other entity types, the text is scanned afresh.
    assert detector.analyze([Segment("body", text)], ["PHONE_NUMBER"]) == []
    # Short texts and texts cut short by the findings limit are not kept.
    detector.analyze([Segment("body", "tax file number 123 456 782")])
    detector.analyze([Segment("sheet", _records(400))])
    assert len(detector.cache._items) == 2


def test_cached_findings_still_count_towards_the_limit() -> None:
    detector = Detector(build_analyzer(DetectorConfig()), max_per_type=50)
    segment = Segment("a", _records(30))
    detector.analyze([segment], ["AU_TFN"])  # now cached
    findings = detector.analyze([segment, Segment("b", _records(30))], ["AU_TFN"])
    assert Counter(f.entity_type for f in findings) == {"AU_TFN": 50, LIMIT_ENTITY: 1}


# --- one Hyperscan compile ----------------------------------------------------------------------


def test_a_trigger_hyperscan_refuses_falls_back_alone() -> None:
    from detectors.prefilter import Prefilter, Trigger

    good = Trigger(r"[0-9]{3}", 3, 0, 0)
    refused = Trigger(r"(?<=a)b", 1, 0, 0)  # Hyperscan has no look-behind (outside prefilter mode)
    both = Prefilter([good, refused])
    assert both.backend == "mixed"
    data = b"x 123 abab 4567 ab"
    assert both.scan(data).by_trigger == Prefilter([good, refused], use_hyperscan=False).scan(data).by_trigger
    assert Prefilter([good]).backend == "hyperscan"


# --- long text in chunks ----------------------------------------------------------------------


def test_chunks_report_every_match_once(detectors: tuple[Detector, Detector]) -> None:
    from detectors import prefilter

    fast = detectors[0]._fast_path
    assert fast is not None
    scanner = fast.scanner
    data = prefilter.scan_bytes(_numberish(random.Random(3)) * 40 + _records(200))
    whole = scanner.scan(data).by_trigger
    pieces: dict[int, list[int]] = {}
    for lo, hi in chunks(len(data), size=997):
        for trigger, ends in scanner.scan_chunk(data, lo, hi, set()).by_trigger.items():
            pieces.setdefault(trigger, []).extend(ends)
    assert pieces == whole
    # Leaving groups out (once they are done) leaves out exactly their triggers.
    skip = {0, 3}
    left_out = {t for g in skip for t in range(scanner.ranges[g][0], sum(scanner.ranges[g]))}
    kept: dict[int, list[int]] = {}
    for lo, hi in chunks(len(data), size=997):
        for trigger, ends in scanner.scan_chunk(data, lo, hi, skip).by_trigger.items():
            kept.setdefault(trigger, []).extend(ends)
    assert kept == {t: e for t, e in whole.items() if t not in left_out}


def test_long_text_in_small_chunks_finds_the_same(
    detectors: tuple[Detector, Detector], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = detectors[0]
    text = "\n".join(_numberish(random.Random(seed)) for seed in range(30)) + "\n" + _records(100)
    segments = [Segment("body", text)]
    expected = [(f.entity_type, f.start, f.end, f.score) for f in fast.analyze(segments)]
    monkeypatch.setattr("detectors.engine.chunks", lambda n: chunks(n, size=1500))
    fresh = Detector(fast.analyzer, cache=ResultCache(0))
    assert [(f.entity_type, f.start, f.end, f.score) for f in fresh.analyze(segments)] == expected
    limited = Detector(fast.analyzer, cache=ResultCache(0), max_per_type=20)
    counts = Counter(f.entity_type for f in limited.analyze(segments))
    assert counts["AU_TFN"] == 20 and counts[LIMIT_ENTITY] >= 1
