"""Australian identifier recognisers: validation, context scoring, collisions, spans."""

from __future__ import annotations

import time

import pytest

from detectors import au_identifiers
from detectors.au_identifiers import au_identifier_recognizers, context_near, keywords
from detectors.config import DetectorConfig
from detectors.engine import Detector, build_analyzer
from gateway.model import Segment

HIGH = 0.85
Hit = tuple[str, str, float]


@pytest.fixture(scope="module")
def recognizers() -> list:
    return au_identifier_recognizers()


def find(recognizers: list, text: str) -> list[Hit]:
    """(entity, matched text, score) from every AU recogniser."""
    hits = []
    for recognizer in recognizers:
        for result in recognizer.analyze(text, []):
            hits.append((result.entity_type, text[result.start : result.end], result.score))
    return hits


def scores_for(hits: list[Hit], entity: str, value: str) -> list[float]:
    return [score for e, v, score in hits if e == entity and v == value]


# (entity, context sentence with {v}, neutral sentence with {v}, valid values, near-miss values)
CHECKSUM_CASES = [
    (
        "AU_TFN",
        "Please update payroll: her tax file number is {v}.",
        "Invoice ref {v} is attached.",
        ["123 456 782", "876 543 210", "812 239 321", "459599230", "907974668", "258 372 209", "123-456-782"],
        ["123 456 781", "123 456 728", "876 543 201", "824 753 557", "999 999 999"],
    ),
    (
        "AU_ABN",
        "Supplier ABN: {v}",
        "Tracking {v} shipped today.",
        [
            "51 824 753 556",
            "83 914 571 673",
            "43 002 724 334",
            "53 004 085 616",
            "51-824-753-556",
            "51824753556",
        ],
        ["52 824 753 556", "51 824 753 565", "15 824 753 556", "00000000560", "99 999 999 999"],
    ),
    (
        "AU_ACN",
        "Acme Holdings, ACN {v}, is the trustee.",
        "Order {v} confirmed.",
        [
            "000 000 019",
            "005 499 981",
            "006 249 976",
            "000 000 180",
            "004 085 616",
            "010 499 966",
            "708-877-310",
        ],
        ["824 753 557", "000 000 018", "004 085 617", "010 499 969"],
    ),
    (
        "AU_MEDICARE",
        "Medicare card number {v} for the claim.",
        "Reference {v} was closed.",
        ["2123 45670 1", "2123456701", "3278 85119 5 2", "32788511952", "4423 51333 1 1", "2123-45670-1"],
        ["2123 45671 1", "7123 45670 1", "1123 45670 1", "2123 25870 1"],
    ),
    (
        "AU_IHI",
        "Patient IHI {v} from My Health Record.",
        "Serial {v} registered.",
        [
            "8003608166690503",
            "8003 6036 5437 5535",
            "8003611234567893",
            "8003621234567892",
            "8003-6083-3364-7261",
        ],
        ["8003608166690504", "8003618166690503", "800360816669050", "8003608166690530"],
    ),
    (
        "CREDIT_CARD",
        "Charge the corporate credit card {v} please.",
        "Parcel {v} is on its way.",
        [
            "4111111111111111",
            "5555555555554444",
            "2223000048400011",
            "378282246310005",
            "4111 1111 1111 1111",
        ],
        ["4111111111111112", "2223000048400012", "378282246310006"],
    ),
]


@pytest.mark.parametrize(
    ("entity", "sentence", "value"),
    [(e, ctx, v) for e, ctx, _n, valid, _m in CHECKSUM_CASES for v in valid],
)
def test_valid_with_context_scores_high(recognizers: list, entity: str, sentence: str, value: str) -> None:
    hits = find(recognizers, sentence.format(v=value))
    assert scores_for(hits, entity, value), hits
    assert max(scores_for(hits, entity, value)) >= HIGH


@pytest.mark.parametrize(
    ("entity", "sentence", "value"),
    [(e, neutral, v) for e, _c, neutral, valid, _m in CHECKSUM_CASES for v in valid],
)
def test_valid_without_context_scores_low(recognizers: list, entity: str, sentence: str, value: str) -> None:
    hits = find(recognizers, sentence.format(v=value))
    scores = scores_for(hits, entity, value)
    assert scores, hits  # still reported, for policies that want it
    assert all(0.3 <= s <= 0.5 for s in scores)


@pytest.mark.parametrize(
    ("entity", "sentence", "value"),
    [(e, ctx, v) for e, ctx, _n, _v, misses in CHECKSUM_CASES for v in misses],
)
def test_near_miss_not_reported(recognizers: list, entity: str, sentence: str, value: str) -> None:
    hits = find(recognizers, sentence.format(v=value))
    assert not [h for h in hits if h[0] == entity], hits


def test_tfn_acn_collision_without_context_reports_both_low(recognizers: list) -> None:
    hits = find(recognizers, "Please quote 100000182 when you reply.")
    assert {e for e, _v, _s in hits} == {"AU_TFN", "AU_ACN"}
    assert all(s <= 0.5 for _e, _v, s in hits)


def test_tfn_acn_collision_resolved_by_tfn_context(recognizers: list) -> None:
    hits = find(recognizers, "My TFN is 100 000 182, please update payroll.")
    assert [(e, s >= HIGH) for e, _v, s in hits] == [("AU_TFN", True)]


def test_tfn_acn_collision_resolved_by_acn_context(recognizers: list) -> None:
    hits = find(recognizers, "Widgets Pty Ltd (ACN 100 000 182) signed the lease.")
    assert [(e, s >= HIGH) for e, _v, s in hits] == [("AU_ACN", True)]


def test_medicare_abn_collision_resolved_by_context(recognizers: list) -> None:
    value = next(
        f"{n:011d}"
        for n in range(20_000_000_000, 30_000_000_000, 7)
        if au_identifiers.checksums.abn_valid(f"{n:011d}")
        and au_identifiers.checksums.medicare_valid(f"{n:011d}")
    )
    assert {e for e, _v, _s in find(recognizers, f"see {value} attached")} == {"AU_ABN", "AU_MEDICARE"}
    assert [e for e, _v, _s in find(recognizers, f"Medicare number {value}")] == ["AU_MEDICARE"]
    assert [e for e, _v, _s in find(recognizers, f"our ABN {value}")] == ["AU_ABN"]


def test_acn_inside_abn_is_not_a_separate_candidate(recognizers: list) -> None:
    hits = find(recognizers, "Acme Pty Ltd ABN 43 002 724 334")
    assert [(e, v) for e, v, _s in hits] == [("AU_ABN", "43 002 724 334")]


def test_abn_and_acn_side_by_side(recognizers: list) -> None:
    hits = find(recognizers, "Acme Pty Ltd ACN 004 085 616 ABN 53 004 085 616")
    assert sorted((e, v) for e, v, _s in hits) == [("AU_ABN", "53 004 085 616"), ("AU_ACN", "004 085 616")]


@pytest.mark.parametrize("value", ["38593474", "12345677", "385 934 74"])
def test_eight_digit_tfn_needs_strong_context(recognizers: list, value: str) -> None:
    with_context = scores_for(find(recognizers, f"old TFN {value}"), "AU_TFN", value)
    assert with_context and with_context[0] >= HIGH
    assert not scores_for(find(recognizers, f"payroll {value}"), "AU_TFN", value)
    assert not scores_for(find(recognizers, f"Tax file number {value[:-1]}5"), "AU_TFN", value)


@pytest.mark.parametrize("value", ["211 082 588 59", "46 0 0 2722 3 49", "5182 4753 556"])
def test_abn_in_any_grouping(recognizers: list, value: str) -> None:
    scores = scores_for(find(recognizers, f"Supplier ABN {value}."), "AU_ABN", value)
    assert scores and scores[0] >= HIGH


def test_medicare_span_includes_irn(recognizers: list) -> None:
    hits = find(recognizers, "Medicare 3278 85119 5 2 and 2123 45670 1/1")
    assert [v for e, v, _s in hits if e == "AU_MEDICARE"] == ["3278 85119 5 2", "2123 45670 1/1"]


def test_medicare_irn_zero_is_not_a_medicare_number(recognizers: list) -> None:
    assert not find(recognizers, "Medicare 2123 45670 1 0")


@pytest.mark.parametrize(
    "text",
    [
        "123 456\n789",
        "52824753556AF",
        "51 824 753 5564",
        "5282475355632",
        "TFN 123 456 782 123",
        "ref-123456782",
    ],
)
def test_no_match_inside_longer_tokens(recognizers: list, text: str) -> None:
    assert not [h for h in find(recognizers, text) if h[0] in ("AU_TFN", "AU_ACN", "AU_ABN")]


@pytest.mark.parametrize(
    ("entity", "context_text", "value"),
    [
        ("AU_DVA", "DVA file number {v}", "NX123456"),
        ("AU_DVA", "Veterans' Affairs gold card {v}", "N 123456"),
        ("AU_DVA", "DVA {v}", "VSM12345"),
        ("AU_DVA", "DVA {v}", "QBUR1234"),
        ("AU_DVA", "DVA {v}", "NX123456A"),
        ("AU_DVA", "DVA {v}", "WCGW1234B"),
        ("AU_CRN", "Centrelink CRN {v}", "123 456 789A"),
        ("AU_CRN", "customer reference number: {v}", "123456789A"),
        ("AU_PASSPORT", "Passport number {v}", "PA1234567"),
        ("AU_PASSPORT", "passport no. {v}", "N1234567"),
        ("AU_PASSPORT", "passport {v}", "PE7654321"),
        ("AU_PASSPORT", "travel document {v}", "E1234567"),
        ("AU_DRIVER_LICENCE", "NSW driver licence {v}", "N49187"),
        ("AU_DRIVER_LICENCE", "Driver's license number: {v}", "12345678"),
        ("AU_DRIVER_LICENCE", "Tasmanian drivers licence {v}", "AB1234"),
        ("AU_DRIVER_LICENCE", "licence card number {v}", "2012345678"),
        ("AU_DRIVER_LICENCE", "driver licence {v}", "123 456 789"),
    ],
)
def test_format_only_identifiers_need_context(
    recognizers: list, entity: str, context_text: str, value: str
) -> None:
    scores = scores_for(find(recognizers, context_text.format(v=value)), entity, value)
    assert scores and max(scores) >= HIGH
    assert not scores_for(find(recognizers, f"Item {value} is in stock."), entity, value)


@pytest.mark.parametrize(
    ("entity", "text"),
    [
        ("AU_DVA", "DVA file number AX123456"),
        ("AU_DVA", "DVA file number NX1234567"),
        ("AU_DVA", "DVA file number nx123456"),
        ("AU_DVA", "DVA file number NB1234567"),
        ("AU_DVA", "veteran flew VA123"),
        ("AU_CRN", "Centrelink CRN 123456789"),
        ("AU_CRN", "Centrelink CRN 123 456 78A"),
        ("AU_CRN", "Centrelink CRN A123456789"),
        ("AU_PASSPORT", "passport PA123456"),
        ("AU_PASSPORT", "passport N12345678"),
        ("AU_DRIVER_LICENCE", "driver licence ABCDEF"),
        ("AU_DRIVER_LICENCE", "software license number 12345678"),
    ],
)
def test_format_near_misses(recognizers: list, entity: str, text: str) -> None:
    assert not [h for h in find(recognizers, text) if h[0] == entity]


@pytest.mark.parametrize("value", ["B1234567", "PG1234567"])
def test_passport_outside_known_series_stays_below_blocking(recognizers: list, value: str) -> None:
    scores = scores_for(find(recognizers, f"passport number {value}"), "AU_PASSPORT", value)
    assert scores and max(scores) < 0.6


def test_passport_in_mrz_line_validated_by_check_digit(recognizers: list) -> None:
    mrz = "P<AUSCITIZEN<<JANE<<<<<<<<<<<<<<<<<<<<<<<<<<\nPA12345673AUS7408122F1204159<<<<<<<<<<<<<<02"
    assert [(e, v) for e, v, s in find(recognizers, mrz) if s >= HIGH] == [("AU_PASSPORT", "PA1234567")]
    assert not find(recognizers, mrz.replace("PA12345673AUS", "PA12345674AUS"))


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("BSB 062-000 Account 12345678", "062-000 Account 12345678"),
        ("Bank details: BSB: 062000, acc no 1234 5678", "062000, acc no 1234 5678"),
        ("Please pay into account 10123456, BSB 732-195.", "10123456, BSB 732-195"),
        ("EFT to 062-000 / 12345678 by Friday", "062-000 / 12345678"),
    ],
)
def test_bank_account_with_bsb(recognizers: list, text: str, span: str) -> None:
    hits = [(v, s) for e, v, s in find(recognizers, text) if e == "AU_BANK_ACCOUNT"]
    assert len(hits) == 1 and hits[0][0] == span and hits[0][1] >= HIGH


@pytest.mark.parametrize(
    "text",
    ["Call 062-000 12345678 today", "BSB 062-000 and nothing else", "BSB 062 000 Account 12345678"],
)
def test_bank_account_needs_bsb_account_and_context(recognizers: list, text: str) -> None:
    assert not [h for h in find(recognizers, text) if h[0] == "AU_BANK_ACCOUNT"]


def test_card_lists_and_separators(recognizers: list) -> None:
    text = "4012888888881881 4012-8888-8888-1881 4012 8888 8888 1881"
    assert [v for e, v, _s in find(recognizers, text) if e == "CREDIT_CARD"] == [
        *text.split(" ", 2)[:2],
        "4012 8888 8888 1881",
    ]


def test_card_mixed_separators_rejected(recognizers: list) -> None:
    assert not find(recognizers, "card 4111 1111-1111 1111")


def test_ihi_is_not_reported_as_card(recognizers: list) -> None:
    assert [e for e, _v, _s in find(recognizers, "card 8003608166690503")] == ["AU_IHI"]


def test_context_near_window() -> None:
    tfn = keywords(r"tfn")
    text = "TFN" + " " * 100 + "123 456 782 ok"
    start = text.index("123")
    assert not context_near(text, start, start + 11, tfn)
    assert context_near(text, start, start + 11, tfn, before=110)
    assert context_near("123 456 782 (TFN)", 0, 11, tfn)
    assert not context_near("123 456 782 TFNX", 0, 11, tfn)  # whole words only


@pytest.mark.parametrize(
    "text",
    [
        "1 " * 50_000,
        "1-" * 50_000,
        "9" * 100_000,
        "A1" * 50_000,
        ("123 " * 3 + "\n") * 10_000,
        "BSB 062-000 " * 5_000,
        "N " * 50_000,
    ],
)
def test_no_catastrophic_backtracking(recognizers: list, text: str) -> None:
    started = time.perf_counter()
    find(recognizers, text)
    assert time.perf_counter() - started < 5.0


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(build_analyzer(DetectorConfig()))


def test_registry_replaces_presidio_au_recognizers(detector: Detector) -> None:
    names = {type(r).__name__ for r in detector.analyzer.registry.recognizers}
    assert not names & {"AuTfnRecognizer", "AuAbnRecognizer", "AuAcnRecognizer", "AuMedicareRecognizer"}
    assert "CreditCardRecognizer" not in names
    assert {"TfnRecognizer", "PaymentCardRecognizer", "BankAccountRecognizer"} <= names


def test_engine_scores_are_ours_and_excerpts_masked(detector: Detector) -> None:
    segments = [
        Segment("subject", "Ref 123 456 782 attached"),
        Segment("body", "Her TFN is 876 543 210."),
        Segment("attachment[1]:a.txt", "Parcel 2223 0000 4840 0011 shipped"),
    ]
    findings = detector.analyze(segments)
    got = {
        (f.entity_type, f.excerpt): f.score for f in findings if f.entity_type in ("AU_TFN", "CREDIT_CARD")
    }
    assert got == {
        ("AU_TFN", "••• ••• 782"): 0.4,
        ("AU_TFN", "••• ••• 210"): 0.95,
        ("CREDIT_CARD", "•••• •••• •••• •011"): 0.5,
    }
