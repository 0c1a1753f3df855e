"""Check-digit and format validation for Australian identifiers and payment cards.

Pure functions over strings: no Presidio, no regex scanning of running text.
Each validator accepts the value as written (spaces, hyphens, slashes are
ignored where the identifier is commonly printed with them) and answers whether
the check digits (or, for identifiers without one, the format) are right.
Algorithms and test values: ``shared/reference/australian-content.md`` part A.
"""

from __future__ import annotations

import operator
import re

TFN9_WEIGHTS = (1, 4, 3, 7, 5, 8, 6, 9, 10)
# django-localflavor's legacy 8-digit weights: the 9-digit weights without the
# 8th, scaled by 10 mod 11 (python-stdnum's truncated weights reject 38593474).
TFN8_WEIGHTS = (10, 7, 8, 4, 6, 3, 5, 1)
ABN_WEIGHTS = (10, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19)
ACN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 1)
MEDICARE_WEIGHTS = (1, 3, 7, 9, 1, 3, 7, 9)
MRZ_WEIGHTS = (7, 3, 1)

HEALTHCARE_PREFIXES = {"800360": "IHI", "800361": "HPI-I", "800362": "HPI-O"}

# Characters people put between digit groups; anything else makes a value invalid.
_SEPARATORS = frozenset(" -/\u00a0\t")

# METeOR "AAXXNNNN[A]": state letter, war code + digits filling 7 characters
# (WWI veterans: a blank then 6 digits), optional dependant segment letter.
_DVA_RE = re.compile(r"[NVQWST](?:[A-Z ]\d{6}|[A-Z]{2}\d{5}|[A-Z]{3}\d{4})[A-Z]?")
# Series letters Microsoft Purview lists for AU passports (DFAT: O, S, Q, I unused).
_PASSPORT_RE = re.compile(r"(?:[NEDFACUX]|P[ABCDEFUWXZ])\d{7}")
_PASSPORT_SHAPE_RE = re.compile(r"[A-Z]{1,2}\d{7}")
_CRN_RE = re.compile(r"\d{3} ?\d{3} ?\d{3}[A-Za-z]")
_BSB_RE = re.compile(r"\d{3}-?\d{3}")


_DROP_SEPARATORS = str.maketrans("", "", "".join(_SEPARATORS))


def digits_of(value: str) -> str | None:
    """The digits of ``value`` with separators dropped, or None if anything else is in it."""
    # One C-level pass each: a spreadsheet of records validates hundreds of thousands of these.
    digits = value.translate(_DROP_SEPARATORS)
    return digits if not digits or (digits.isascii() and digits.isdigit()) else None


def _weighted_sum(digits: str, weights: tuple[int, ...]) -> int:
    if len(digits) != len(weights):
        raise ValueError("digits and weights differ in length")
    return sum(map(operator.mul, map(int, digits), weights))


def tfn_valid(value: str) -> bool:
    """A 9-digit Tax File Number: weights 1,4,3,7,5,8,6,9,10, sum divisible by 11."""
    digits = digits_of(value)
    return digits is not None and len(digits) == 9 and _weighted_sum(digits, TFN9_WEIGHTS) % 11 == 0


def tfn8_valid(value: str) -> bool:
    """A legacy 8-digit TFN with django-localflavor's weights (disputed: use only with context)."""
    digits = digits_of(value)
    return digits is not None and len(digits) == 8 and _weighted_sum(digits, TFN8_WEIGHTS) % 11 == 0


def abn_valid(value: str) -> bool:
    """An 11-digit ABN: first digit minus one, weighted sum divisible by 89 (ABR method)."""
    digits = digits_of(value)
    if digits is None or len(digits) != 11 or digits[0] == "0":
        return False
    adjusted = str(int(digits[0]) - 1) + digits[1:]
    return _weighted_sum(adjusted, ABN_WEIGHTS) % 89 == 0


def acn_valid(value: str) -> bool:
    """A 9-digit ACN (also ARBN/ARSN): check = (10 − weighted sum mod 10) mod 10."""
    digits = digits_of(value)
    if digits is None or len(digits) != 9:
        return False
    check = (10 - _weighted_sum(digits[:8], ACN_WEIGHTS) % 10) % 10
    return check == int(digits[8])


def medicare_valid(value: str) -> bool:
    """A Medicare card number: 10 digits, or 11 with the IRN (1–9).

    First digit 2–6, digit 9 = weighted sum of digits 1–8 mod 10, digit 10 the issue number.
    """
    digits = digits_of(value)
    if digits is None or len(digits) not in (10, 11) or digits[0] not in "23456":
        return False
    if len(digits) == 11 and digits[10] == "0":
        return False
    return _weighted_sum(digits[:8], MEDICARE_WEIGHTS) % 10 == int(digits[8])


def luhn_valid(value: str) -> bool:
    """The Luhn (mod 10 double-add-double) check over all digits of ``value``."""
    digits = digits_of(value)
    if not digits:
        return False
    total = 0
    for position, ch in enumerate(reversed(digits)):
        d = int(ch)
        if position % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def healthcare_identifier_kind(value: str) -> str | None:
    """``IHI``, ``HPI-I`` or ``HPI-O`` for a valid 16-digit healthcare identifier, else None."""
    digits = digits_of(value)
    if digits is None or len(digits) != 16 or not luhn_valid(digits):
        return None
    return HEALTHCARE_PREFIXES.get(digits[:6])


def healthcare_identifier_valid(value: str) -> bool:
    """Whether ``value`` is a valid IHI, HPI-I or HPI-O (prefix 80036[0-2], Luhn)."""
    return healthcare_identifier_kind(value) is not None


def card_issuer_plausible(digits: str) -> bool:
    """Whether a PAN's length and leading digits fall in an issued range.

    Deliberately broad (Visa, Mastercard 51–55 and 2221–2720, Amex, Diners, JCB,
    Discover, UnionPay, Maestro, UATP) so the Luhn check does the real work.
    """
    length = len(digits)
    if not 13 <= length <= 19:
        return False
    first = digits[0]
    if first == "1":
        return length == 15  # UATP
    if first == "2":
        return 222100 <= int(digits[:6]) <= 272099 and length == 16
    return first in "3456"


def payment_card_valid(value: str) -> bool:
    """A payment card number: 13–19 digits, issued range, Luhn."""
    digits = digits_of(value)
    return digits is not None and card_issuer_plausible(digits) and luhn_valid(digits)


def mrz_check_digit(field: str) -> int:
    """ICAO 9303 check digit: weights 7,3,1; 0–9 as is, A–Z as 10–35, ``<`` as 0."""
    total = 0
    for index, ch in enumerate(field):
        if ch.isdigit():
            v = int(ch)
        elif "A" <= ch <= "Z":
            v = ord(ch) - ord("A") + 10
        elif ch == "<":
            v = 0
        else:
            raise ValueError("not an MRZ character")
        total += v * MRZ_WEIGHTS[index % 3]
    return total % 10


def mrz_field_valid(field: str, check: str) -> bool:
    """Whether ``check`` is the right MRZ check digit for ``field``."""
    try:
        return check.isdigit() and mrz_check_digit(field) == int(check)
    except ValueError:
        return False


def dva_file_number_valid(value: str) -> bool:
    """DVA file number format (no check digit exists), e.g. ``NX123456``, ``N 123456``."""
    return _DVA_RE.fullmatch(value) is not None


def passport_series_known(value: str) -> bool:
    """AU passport number in a series Microsoft Purview lists (letter(s) + 7 digits)."""
    return _PASSPORT_RE.fullmatch(value) is not None


def passport_shape_valid(value: str) -> bool:
    """Any one or two capital letters + 7 digits (series lists are unconfirmed)."""
    return _PASSPORT_SHAPE_RE.fullmatch(value) is not None


def crn_format_valid(value: str) -> bool:
    """Centrelink CRN shape: 9 digits then a letter (the check letter is unpublished)."""
    return _CRN_RE.fullmatch(value) is not None


def bsb_format_valid(value: str) -> bool:
    """BSB shape ``NNN-NNN`` or ``NNNNNN`` (no checksum; the state digit is unreliable)."""
    return _BSB_RE.fullmatch(value) is not None


def bank_account_number_valid(value: str) -> bool:
    """An account number: 6–10 digits (separators allowed), no checksum exists."""
    digits = digits_of(value)
    return digits is not None and 6 <= len(digits) <= 10
