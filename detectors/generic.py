"""Presidio's generic recognisers (phone, IP, IBAN) as the gateway runs them.

Each keeps Presidio's matching and validation, scores context itself
(:mod:`detectors.context`) and declares the prefilter triggers every one of
its results contains (:mod:`detectors.prefilter`).
"""

from __future__ import annotations

from presidio_analyzer.predefined_recognizers import IbanRecognizer, IpRecognizer, PhoneRecognizer

from detectors.context import ContextScored
from detectors.prefilter import Trigger, Windowed

# Numbers written in international form (+44 …, +1 …) are found whatever the region;
# each extra region costs a full libphonenumber pass over every number-like token.
PHONE_REGIONS = ("AU",)

# Context is read from the whole text (detectors.context); windows need only hold
# a result that starts a few characters before its trigger ("(02) …", "+ 61 …").
_BEFORE = 24

# phonenumbers' VALID_PUNCTUATION as it appears in scan_bytes (other scripts' forms
# become a space or the placeholder); at most four may separate two digits.
_PUNCT = r"[-xX \xa0\xad().\[\]/~\x1a]"
_DIGIT = rf"(?:{_PUNCT}{{0,4}}[0-9])"
_START = r"(?:^|[^0-9])"


def phone_triggers() -> tuple[Trigger, ...]:
    """What every phone number libphonenumber accepts with region AU contains.

    With leniency VALID, a number found in AU's region is either written with a
    plus sign, or starts with AU's national prefix 0 (or its 0011 international
    prefix), or starts with 1 (13/1300/1800/19… numbers need no prefix) or 61
    (the country code without a plus); and a valid number has at least six
    digits.  Its first digit follows a non-digit: the matcher only starts a
    candidate inside a digit run after 100 digit blocks, the last trigger.
    (Refusing runs with two slashes, as the matcher does, would spare the
    dates; as a Hyperscan pattern it made the whole scan 100 times slower.)
    """
    return (
        Trigger(rf"{_START}[016]{_DIGIT}{{5}}", 2 + 5 * 5, _BEFORE, 64),
        Trigger(rf"\+{_PUNCT}{{0,4}}[0-9]{_DIGIT}{{5}}", 2 + 4 + 5 * 5, _BEFORE, 64),
        Trigger(rf"[0-9]{_DIGIT}{{100}}", 1 + 100 * 5, _BEFORE, 64),
    )


class PhoneNumberRecognizer(ContextScored, PhoneRecognizer):
    """Presidio's PhoneRecognizer in the AU region, context scored from the text."""

    def __init__(self) -> None:
        super().__init__(supported_regions=list(PHONE_REGIONS))

    def prefilter_spec(self) -> Windowed:
        """Windows around the shapes a number found in AU's region can take."""
        return Windowed(phone_triggers())


class IpAddressRecognizer(ContextScored, IpRecognizer):
    """Presidio's IpRecognizer, context scored from the text."""

    def prefilter_spec(self) -> Windowed:
        """Dotted quads, and the two colons every IPv6 form has within five characters."""
        return Windowed(
            (
                Trigger(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}", 15, _BEFORE, 64),
                Trigger(r":[0-9A-Fa-f]{0,4}:", 6, _BEFORE + 48, 64),
            )
        )


class IbanCodeRecognizer(ContextScored, IbanRecognizer):
    """Presidio's IbanRecognizer, context scored from the text."""

    def prefilter_spec(self) -> Windowed:
        """Country code, check digits and two groups of four: the start of every IBAN."""
        return Windowed((Trigger(r"[A-Z]{2}[0-9]{2}(?:[ -]?[A-Z0-9]{4}){2}", 14, _BEFORE, 64),))
