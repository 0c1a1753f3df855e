"""Check digits and formats against every valid and near-miss value in the reference (part A)."""

from __future__ import annotations

import pytest

from detectors import checksums

TFN_VALID = [
    "123 456 782",
    "876 543 210",
    "112474082",
    "459599230",
    "565051603",
    "812 239 321",
    "865414088",
    "907974668",
    "258 372 209",
    "711 297 450",
    "664 033 737",
    "123-456-782",
]
TFN_INVALID = ["123 456 781", "123 456 728", "876 543 201", "824 753 557", "999 999 999", "12345678", ""]
TFN8_VALID = ["38593474", "12345677", "385 934 74"]
TFN8_INVALID = ["38593475", "123456782", "1234567"]
ABN_VALID = [
    "51 824 753 556",
    "83 914 571 673",
    "43 002 724 334",
    "53 004 085 616",
    "20 510 800 036",
    "21 842 861 161",
    "44 277 916 342",
    "51-824-753-556",
]
ABN_INVALID = [
    "52 824 753 556",
    "51 824 753 565",
    "15 824 753 556",
    "00000000560",
    "99 999 999 999",
    "5182475355",
]
ACN_VALID = [
    "000 000 019",
    "005 499 981",
    "006 249 976",
    "000 000 180",
    "004 085 616",
    "010 499 966",
    "002 724 334",
    "708 877 310",
    "205 831 750",
    "906 389 982",
]
ACN_INVALID = ["824 753 557", "000 000 018", "004 085 617", "010 499 969", "00408561"]
MEDICARE_VALID = [
    "2123 45670 1",
    "2123456701",
    "3278 85119 5 2",
    "32788511952",
    "4423 51333 1 1",
    "3753 63676 1 1",
    "3268 44568 1 1",
    "2123-45670-1",
    "2123 45670 1/1",
]
MEDICARE_INVALID = [
    "2123 45671 1",
    "7123 45670 1",
    "1123 45670 1",
    "2123 45670 1 0",
    "2123 25870 1",
    "212345670",
]
IHI_VALID = {
    "8003608166690503": "IHI",
    "8003608333647261": "IHI",
    "8003608000311662": "IHI",
    "8003 6036 5437 5535": "IHI",
    "8003 6017 0623 0047": "IHI",
    "8003611234567893": "HPI-I",
    "8003621234567892": "HPI-O",
}
IHI_INVALID = [
    "8003608166690504",
    "8003618166690503",
    "800360816669050",
    "8003608166690530",
    "4111111111111111",
]
CARD_VALID = [
    "4111111111111111",
    "5555555555554444",
    "2223000048400011",
    "378282246310005",
    "4012-8888-8888-1881",
]
CARD_INVALID = [
    "4111111111111112",
    "2223000048400012",
    "378282246310006",
    "8003608166690503",  # Luhn-valid IHI: not an issued card range
    "1748503543012",
    "2100000000000006",  # Luhn-valid but below the Mastercard 2-series range
]


@pytest.mark.parametrize("value", TFN_VALID)
def test_tfn_valid(value: str) -> None:
    assert checksums.tfn_valid(value)


@pytest.mark.parametrize("value", TFN_INVALID)
def test_tfn_invalid(value: str) -> None:
    assert not checksums.tfn_valid(value)


@pytest.mark.parametrize("value", TFN8_VALID)
def test_tfn8_valid_with_localflavor_weights(value: str) -> None:
    assert checksums.tfn8_valid(value)


@pytest.mark.parametrize("value", TFN8_INVALID)
def test_tfn8_invalid(value: str) -> None:
    assert not checksums.tfn8_valid(value)


@pytest.mark.parametrize("value", ABN_VALID)
def test_abn_valid(value: str) -> None:
    assert checksums.abn_valid(value)


@pytest.mark.parametrize("value", ABN_INVALID)
def test_abn_invalid(value: str) -> None:
    assert not checksums.abn_valid(value)


@pytest.mark.parametrize("value", ACN_VALID)
def test_acn_valid(value: str) -> None:
    assert checksums.acn_valid(value)


@pytest.mark.parametrize("value", ACN_INVALID)
def test_acn_invalid(value: str) -> None:
    assert not checksums.acn_valid(value)


def test_acn_is_the_tail_of_a_company_abn() -> None:
    assert checksums.acn_valid("002 724 334") and checksums.abn_valid("43 002 724 334")


def test_a_number_can_be_both_tfn_and_acn() -> None:
    assert checksums.tfn_valid("100000182") and checksums.acn_valid("100000182")


@pytest.mark.parametrize("value", MEDICARE_VALID)
def test_medicare_valid(value: str) -> None:
    assert checksums.medicare_valid(value)


@pytest.mark.parametrize("value", MEDICARE_INVALID)
def test_medicare_invalid(value: str) -> None:
    assert not checksums.medicare_valid(value)


@pytest.mark.parametrize(("value", "kind"), IHI_VALID.items())
def test_healthcare_identifier_kind(value: str, kind: str) -> None:
    assert checksums.healthcare_identifier_kind(value) == kind
    assert checksums.healthcare_identifier_valid(value)


@pytest.mark.parametrize("value", IHI_INVALID)
def test_healthcare_identifier_invalid(value: str) -> None:
    assert not checksums.healthcare_identifier_valid(value)


@pytest.mark.parametrize("value", CARD_VALID)
def test_payment_card_valid(value: str) -> None:
    assert checksums.payment_card_valid(value)


@pytest.mark.parametrize("value", CARD_INVALID)
def test_payment_card_invalid(value: str) -> None:
    assert not checksums.payment_card_valid(value)


def test_luhn_and_separators() -> None:
    assert checksums.luhn_valid("4111 1111 1111 1111")
    assert not checksums.luhn_valid("4111 1111 1111 111x")
    assert not checksums.luhn_valid("")
    assert checksums.digits_of("12 34-5/6") == "123456"
    assert checksums.digits_of("12a4") is None
    assert checksums.digits_of("١٢٣") is None  # non-ASCII digits are not identifier digits


@pytest.mark.parametrize(
    ("field", "check"),
    [("L898902C3", 6), ("740812", 2), ("120415", 9), ("PA1234567", 3), ("N1234567<", 7)],
)
def test_mrz_check_digit(field: str, check: int) -> None:
    assert checksums.mrz_check_digit(field) == check
    assert checksums.mrz_field_valid(field, str(check))
    assert not checksums.mrz_field_valid(field, str((check + 1) % 10))


def test_mrz_rejects_foreign_characters() -> None:
    assert not checksums.mrz_field_valid("pa1234567", "3")


@pytest.mark.parametrize(
    "value", ["NX123456", "N 123456", "VSM12345", "QBUR1234", "NX123456A", "WCGW1234B", "SCGW1234"]
)
def test_dva_valid(value: str) -> None:
    assert checksums.dva_file_number_valid(value)


@pytest.mark.parametrize(
    "value", ["AX123456", "N1234567", "NX1234567", "nx123456", ",X123456", "NB1234567", "VA123"]
)
def test_dva_invalid(value: str) -> None:
    assert not checksums.dva_file_number_valid(value)


@pytest.mark.parametrize("value", ["N1234567", "PA1234567", "PE7654321", "E1234567"])
def test_passport_known_series(value: str) -> None:
    assert checksums.passport_series_known(value)


@pytest.mark.parametrize("value", ["B1234567", "PG1234567", "PA123456", "N12345678"])
def test_passport_near_misses_not_in_known_series(value: str) -> None:
    assert not checksums.passport_series_known(value)


def test_passport_shape_is_broader_than_known_series() -> None:
    assert checksums.passport_shape_valid("B1234567")
    assert not checksums.passport_shape_valid("PA123456")


@pytest.mark.parametrize(
    ("value", "ok"), [("123 456 789A", True), ("123456789A", True), ("123456789", False)]
)
def test_crn_format(value: str, ok: bool) -> None:
    assert checksums.crn_format_valid(value) is ok


@pytest.mark.parametrize("value", ["123 456 78A", "A123456789"])
def test_crn_near_misses(value: str) -> None:
    assert not checksums.crn_format_valid(value)


@pytest.mark.parametrize(("value", "ok"), [("062-000", True), ("732195", True), ("062 000", False)])
def test_bsb_format(value: str, ok: bool) -> None:
    assert checksums.bsb_format_valid(value) is ok


@pytest.mark.parametrize(
    ("value", "ok"), [("12345678", True), ("1234 5678", True), ("12345", False), ("12345678901", False)]
)
def test_bank_account_number(value: str, ok: bool) -> None:
    assert checksums.bank_account_number_valid(value) is ok
