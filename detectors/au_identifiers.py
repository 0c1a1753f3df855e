"""Presidio recognisers for Australian identifiers and payment cards.

They replace Presidio's own AU recognisers, which score a bare checksum-valid
number 1.0, report a number valid as both TFN and ACN twice at 1.0, and miss
hyphenated numbers, the Medicare IRN and legacy 8-digit TFNs.  Here a candidate
is found by a bounded regex, checked with :mod:`detectors.checksums`, then scored
by :func:`context_near` over a window of text around it:

* checksum-valid without context: a low score (0.3–0.5), kept for policies
  that want it but below any sensible blocking threshold;
* checksum-valid with context: 0.95;
* identifiers without a public checksum (CRN, passport, DVA, licence, bank
  account): reported only when context is near.

When one value is valid as two identifiers (TFN/ACN, 11-digit Medicare/ABN),
the one whose context is present wins and the other is dropped; with no context
both are reported at their low scores.  Presidio's lemma context enhancer is
bypassed (results are marked as already enhanced) so scores are exactly these.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from presidio_analyzer import AnalysisExplanation, EntityRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from detectors import checksums
from detectors.prefilter import Trigger, Windowed, literals

CONTEXT_BEFORE = 80
CONTEXT_AFTER = 40
SCORE_WITH_CONTEXT = 0.95
SCORE_FORMAT_WITH_CONTEXT = 0.85  # no checksum: context is the only evidence
BANK_ACCOUNT_GAP = 60  # how far from the BSB an account number may be

# One separator between digit groups: space, no-break space or hyphen, never a
# newline (a number split across table cells is two numbers).
_SEP = r"[ \u00a0-]"
# Not part of a longer token: no letter/digit/joining punctuation on either side
# and no digit group straight before or after (so an ACN inside an ABN, or a
# TFN inside a longer run of grouped digits, is not a candidate).  A comma is a
# boundary (CSV cells: "17,459599230,…"); commas never join the groups of an
# identifier, so a thousands-formatted amount still never matches.
_LEAD = r"(?<![\w./-])(?<!\d[ \u00a0])"
_TRAIL = r"(?![\w/-])(?!\.\d)(?![ \u00a0]\d)"
_WORD_LEAD = r"(?<![\w-])"
_WORD_TRAIL = r"(?![\w-])"

MatchCheck = Callable[["re.Match[str]"], bool]


def keywords(*phrases: str) -> re.Pattern[str]:
    """Compile context phrases (regex fragments) into one case-insensitive whole-word pattern."""
    body = "|".join(phrases)
    return re.compile(rf"(?<![A-Za-z0-9])(?:{body})(?![A-Za-z0-9])", re.IGNORECASE)


def context_near(
    text: str,
    start: int,
    end: int,
    context: re.Pattern[str],
    before: int = CONTEXT_BEFORE,
    after: int = CONTEXT_AFTER,
) -> bool:
    """Whether ``context`` occurs within ``before`` characters before or ``after`` after a span.

    A plain function over a window of text, so it can run on candidates only.
    """
    left = text[max(0, start - before) : start]
    right = text[end : end + after]
    return context.search(left) is not None or context.search(right) is not None


def _on_value(check: Callable[[str], bool]) -> MatchCheck:
    """Adapt a value validator to take the regex match."""
    return lambda match: check(match.group("value"))


def _always(_match: re.Match[str]) -> bool:
    return True


def _id_pattern(body: str) -> re.Pattern[str]:
    return re.compile(f"{_LEAD}(?P<value>{body}){_TRAIL}", re.ASCII)


def _word_pattern(body: str) -> re.Pattern[str]:
    return re.compile(f"{_WORD_LEAD}(?P<value>{body}){_WORD_TRAIL}", re.ASCII)


# --- context vocabularies ---------------------------------------------------------------

TFN_STRONG_CONTEXT = keywords(r"tfns?", r"tax\s+file(?:\s+(?:number|no\.?|#))?")
TFN_CONTEXT = keywords(
    r"tfns?",
    r"tax\s+file(?:\s+(?:number|no\.?|#))?",
    r"tax\s+file\s+number\s+declaration",
    r"withholding\s+declaration",
    r"individual\s+tax\s+return",
    r"payg",
)
ABN_CONTEXT = keywords(
    r"abn", r"a\.b\.n\.?", r"australian\s+business\s+(?:number|no\.?)", r"business\s+number", r"gst"
)
ACN_CONTEXT = keywords(
    r"acn",
    r"a\.c\.n\.?",
    r"arbn",
    r"arsn",
    r"australian\s+company\s+(?:number|no\.?)",
    r"company\s+(?:number|no\.?)",
    r"pty\.?\s+(?:ltd\.?|limited)",
)
MEDICARE_CONTEXT = keywords(
    r"medicare", r"irn", r"individual\s+reference\s+(?:number|no\.?)", r"bulk[\s-]?bill(?:ing|ed)?"
)
IHI_CONTEXT = keywords(
    r"ihi",
    r"hpi-?[io]",
    r"individual\s+healthcare\s+identifier",
    r"healthcare\s+identifiers?",
    r"hi\s+service",
    r"my\s+health\s+record",
)
DVA_CONTEXT = keywords(
    r"dva",
    r"veterans?",
    r"veterans['’]?\s+affairs",
    r"(?:gold|white|orange)\s+card",
    r"file\s+(?:number|no\.?)",
)
CRN_CONTEXT = keywords(
    r"crn",
    r"customer\s+reference\s+(?:number|no\.?)",
    r"centrelink",
    r"services\s+australia",
    r"(?:pensioner\s+)?concession\s+card",
    r"health\s+care\s+card",
)
PASSPORT_CONTEXT = keywords(
    r"passports?(?:\s*(?:#|no\.?|number|numbers|details|id))?",
    r"passportno",
    r"passportnumber",
    r"travel\s+document",
)
# Driver-specific only: "license number" alone is mostly software licensing.
LICENCE_CONTEXT = keywords(
    r"driv(?:er|ers|er['’]s|ing)\s*(?:licen[cs]es?|lic\.?)",
    r"licen[cs]e\s+card(?:\s+(?:number|no\.?|#))?",
    r"licence\s+(?:number|no\.?|#)",
    r"learner['’]?s?\s+permit",
)
BANK_CONTEXT = keywords(
    r"bsb",
    r"acc(?:oun)?t(?:\s+(?:number|no\.?|#|name))?",
    r"a/c",
    r"bank(?:ing)?(?:\s+details)?",
    r"eft",
    r"direct\s+(?:credit|deposit|debit)",
    r"remittance",
)
BSB_KEYWORD = keywords(r"bsb")
CARD_CONTEXT = keywords(
    r"credit",
    r"debit",
    r"cards?",
    r"visa",
    r"master\s?card",
    r"amex",
    r"american\s+express",
    r"diners",
    r"discover",
    r"jcb",
    r"maestro",
    r"unionpay",
    r"cvv",
    r"cvc",
    r"expiry",
    r"expires",
    r"exp\.?\s+date",
    r"valid\s+thru",
    # not "cc" or "exp": every forwarded message has a Cc: line
)


# --- specifications ---------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """One way an identifier is written, how it is validated and scored."""

    regex: re.Pattern[str]
    validate: MatchCheck
    context: re.Pattern[str]
    score_without_context: float | None  # None: context is required
    score_with_context: float = SCORE_WITH_CONTEXT
    name: str = ""


@dataclass(frozen=True)
class Rival:
    """Another identifier the same digits can be; its context, if present alone, wins."""

    entity: str
    validate: Callable[[str], bool]
    context: re.Pattern[str]


@dataclass(frozen=True)
class Candidate:
    """A validated, scored span (internal, before it becomes a RecognizerResult)."""

    start: int
    end: int
    score: float
    explanation: str


def score_candidate(has_context: bool, shape: Shape) -> float | None:
    """The score for a validated candidate, or None when it needs context it lacks."""
    if has_context:
        return shape.score_with_context
    return shape.score_without_context


def rival_wins(text: str, start: int, end: int, value: str, rivals: tuple[Rival, ...]) -> str | None:
    """The rival entity that owns a context-less value, if its context is near and it validates."""
    for rival in rivals:
        if rival.validate(value) and context_near(text, start, end, rival.context):
            return rival.entity
    return None


class IdentifierRecognizer(EntityRecognizer):
    """Regex candidates → validation → context score, for one entity type."""

    ENTITY = ""
    SHAPES: tuple[Shape, ...] = ()
    RIVALS: tuple[Rival, ...] = ()
    # Prefilter: every candidate contains one of these (or, where context is
    # required, one lies near it); see detectors.prefilter.
    TRIGGERS: tuple[Trigger, ...] = ()

    def prefilter_spec(self) -> Windowed:
        """Where the fast path runs this recogniser: windows around its triggers."""
        return Windowed(self.TRIGGERS)

    def __init__(self) -> None:
        # context=[] keeps Presidio's own context enhancer away from our scores.
        super().__init__(supported_entities=[self.ENTITY], supported_language="en", context=[])

    def load(self) -> None:
        """Nothing to load: patterns are compiled at import."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        """Find this recogniser's entity in ``text``."""
        if entities and self.ENTITY not in entities:
            return []
        best: dict[tuple[int, int], Candidate] = {}
        for candidate in self.candidates(text):
            key = (candidate.start, candidate.end)
            if key not in best or best[key].score < candidate.score:
                best[key] = candidate
        return [self._result(c) for c in sorted(best.values(), key=lambda c: c.start)]

    def candidates(self, text: str) -> Iterator[Candidate]:
        """Scored candidates from every shape (overridden by recognisers with extra logic)."""
        for shape in self.SHAPES:
            for match in shape.regex.finditer(text):
                if not shape.validate(match):
                    continue
                start, end = match.span("value")
                has_context = context_near(text, start, end, shape.context)
                score = score_candidate(has_context, shape)
                if score is None:
                    continue
                if not has_context:
                    rival = rival_wins(text, start, end, match.group("value"), self.RIVALS)
                    if rival is not None:
                        continue
                how = "context" if has_context else "no context"
                yield Candidate(start, end, score, f"{shape.name or self.ENTITY}: valid, {how}")

    def _result(self, candidate: Candidate) -> RecognizerResult:
        explanation = AnalysisExplanation(
            recognizer=type(self).__name__,
            original_score=candidate.score,
            textual_explanation=candidate.explanation,
        )
        return RecognizerResult(
            entity_type=self.ENTITY,
            start=candidate.start,
            end=candidate.end,
            score=candidate.score,
            analysis_explanation=explanation,
            recognition_metadata={
                RecognizerResult.RECOGNIZER_NAME_KEY: type(self).__name__,
                RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY: True,
            },
        )


# --- prefilter triggers (Hyperscan/``re`` syntax over detectors.prefilter.scan_bytes) ----------

_T_SEP = r"[ \xa0-]"
# A value-shaped trigger is part of the value: the window reads the context
# either side (80/40), the rival's context and the look-behinds, with room to spare.
_SHAPE_BEFORE = CONTEXT_BEFORE + CONTEXT_AFTER + 40
_SHAPE_AFTER = CONTEXT_BEFORE + CONTEXT_AFTER + 40
# A context-word trigger: the value lies within 80 characters after it or 40
# before it, and its own context is read from there.
_WORD_REACH = 2 * (CONTEXT_BEFORE + CONTEXT_AFTER) + 60
_T_NINE = Trigger(rf"\d{{3}}{_T_SEP}?\d{{3}}{_T_SEP}?\d{{3}}", 11, _SHAPE_BEFORE, _SHAPE_AFTER)
_T_EIGHT = Trigger(rf"\d{{3}}{_T_SEP}?\d{{3}}{_T_SEP}?\d{{2}}", 10, _SHAPE_BEFORE, _SHAPE_AFTER)


def _context_words(*words: str, reach: int = _WORD_REACH) -> tuple[Trigger, ...]:
    """Triggers on the literal words that every alternative of a required context contains."""
    return literals(words, reach, reach)


# ``\s`` of the context patterns (Unicode) over scan_bytes: Latin-1 spaces too.
_T_SPACE = r"[\s\x1c-\x1f\x85\xa0]"


def _context_phrases(*phrases: tuple[str, int], reach: int = _WORD_REACH) -> tuple[Trigger, ...]:
    """Triggers for multi-word context alternatives, ``(pattern, longest match)`` each."""
    return tuple(
        Trigger(p.replace(r"\s", _T_SPACE), width, reach, reach, caseless=True) for p, width in phrases
    )


_NINE_DIGITS = _id_pattern(rf"\d{{3}}{_SEP}?\d{{3}}{_SEP}?\d{{3}}")
# ABNs turn up in every grouping ("211 082 588 59", "46 0 0 2722 3 49" in python-stdnum's
# list of real ones); 11 digits with at most one separator between any two is still
# linear to match, and mod 89 plus context does the rest.
_ELEVEN_DIGITS = _id_pattern(rf"\d(?:{_SEP}?\d){{10}}")
_MEDICARE = _id_pattern(rf"[2-6]\d{{3}}{_SEP}?\d{{5}}{_SEP}?\d(?:(?:{_SEP}|/)?[1-9])?")


def _medicare11_valid(value: str) -> bool:
    digits = checksums.digits_of(value)
    return digits is not None and len(digits) == 11 and checksums.medicare_valid(digits)


class TfnRecognizer(IdentifierRecognizer):
    """Tax File Number: 9 digits (mod 11); legacy 8 digits only with strong context."""

    ENTITY = "AU_TFN"
    TRIGGERS = (_T_EIGHT,)  # the 9-digit shape contains the 8-digit one
    SHAPES = (
        Shape(_NINE_DIGITS, _on_value(checksums.tfn_valid), TFN_CONTEXT, 0.4, name="TFN"),
        Shape(
            _id_pattern(rf"\d{{3}}{_SEP}?\d{{3}}{_SEP}?\d{{2}}"),
            _on_value(checksums.tfn8_valid),
            TFN_STRONG_CONTEXT,
            None,
            SCORE_FORMAT_WITH_CONTEXT,
            name="TFN (8-digit)",
        ),
    )
    RIVALS = (Rival("AU_ACN", checksums.acn_valid, ACN_CONTEXT),)


class AcnRecognizer(IdentifierRecognizer):
    """Australian Company Number (and ARBN/ARSN): 9 digits, modified mod 10."""

    ENTITY = "AU_ACN"
    TRIGGERS = (_T_NINE,)
    SHAPES = (Shape(_NINE_DIGITS, _on_value(checksums.acn_valid), ACN_CONTEXT, 0.3, name="ACN"),)
    RIVALS = (Rival("AU_TFN", checksums.tfn_valid, TFN_CONTEXT),)


class AbnRecognizer(IdentifierRecognizer):
    """Australian Business Number: 11 digits, mod 89."""

    ENTITY = "AU_ABN"
    TRIGGERS = (Trigger(rf"\d(?:{_T_SEP}?\d){{10}}", 21, _SHAPE_BEFORE, _SHAPE_AFTER),)
    SHAPES = (Shape(_ELEVEN_DIGITS, _on_value(checksums.abn_valid), ABN_CONTEXT, 0.4, name="ABN"),)
    RIVALS = (Rival("AU_MEDICARE", _medicare11_valid, MEDICARE_CONTEXT),)


class MedicareRecognizer(IdentifierRecognizer):
    """Medicare card number, 10 digits or 11 with the IRN, spaced, hyphenated or plain."""

    ENTITY = "AU_MEDICARE"
    TRIGGERS = (Trigger(rf"[2-6]\d{{3}}{_T_SEP}?\d{{5}}{_T_SEP}?\d", 12, _SHAPE_BEFORE, _SHAPE_AFTER),)
    SHAPES = (Shape(_MEDICARE, _on_value(checksums.medicare_valid), MEDICARE_CONTEXT, 0.4, name="Medicare"),)
    RIVALS = (Rival("AU_ABN", checksums.abn_valid, ABN_CONTEXT),)


class HealthcareIdentifierRecognizer(IdentifierRecognizer):
    """IHI, HPI-I and HPI-O: 16 digits, prefix 800360/1/2, Luhn."""

    ENTITY = "AU_IHI"
    TRIGGERS = (
        Trigger(
            rf"8003{_T_SEP}?6[0-2]\d{{2}}{_T_SEP}?\d{{4}}{_T_SEP}?\d{{4}}", 19, _SHAPE_BEFORE, _SHAPE_AFTER
        ),
    )
    SHAPES = (
        Shape(
            _id_pattern(rf"8003{_SEP}?6[0-2]\d{{2}}{_SEP}?\d{{4}}{_SEP}?\d{{4}}"),
            _on_value(checksums.healthcare_identifier_valid),
            IHI_CONTEXT,
            0.5,
            name="IHI/HPI",
        ),
    )


class DvaFileNumberRecognizer(IdentifierRecognizer):
    """DVA file number (METeOR fixed-length form); no checksum, so context is required."""

    ENTITY = "AU_DVA"
    TRIGGERS = (
        *_context_words("dva", "veteran"),
        *_context_phrases((r"(?:gold|white|orange)\s+card", 80), (r"file\s+no", 80)),
    )
    SHAPES = (
        Shape(
            _word_pattern(r"[NVQWST](?:[A-Z ]\d{6}|[A-Z]{2}\d{5}|[A-Z]{3}\d{4})[A-Z]?"),
            _always,
            DVA_CONTEXT,
            None,
            SCORE_FORMAT_WITH_CONTEXT,
            name="DVA file number",
        ),
    )


class CentrelinkCrnRecognizer(IdentifierRecognizer):
    """Centrelink Customer Reference Number: 9 digits + letter, context required."""

    ENTITY = "AU_CRN"
    TRIGGERS = (
        *_context_words("crn", "centrelink", "concession"),
        *_context_phrases(
            (r"customer\s+reference", 80), (r"services\s+australia", 80), (r"health\s+care\s+card", 80)
        ),
    )
    SHAPES = (
        Shape(
            re.compile(
                rf"{_LEAD}(?P<value>\d{{3}}{_SEP}?\d{{3}}{_SEP}?\d{{3}}[A-Za-z]){_WORD_TRAIL}", re.ASCII
            ),
            _always,
            CRN_CONTEXT,
            None,
            SCORE_FORMAT_WITH_CONTEXT,
            name="CRN",
        ),
    )


def _mrz_valid(match: re.Match[str]) -> bool:
    field = match.group("value").ljust(9, "<")
    return checksums.mrz_field_valid(field, match.group("check"))


class PassportRecognizer(IdentifierRecognizer):
    """AU passport number: letter(s) + 7 digits with passport context, or in an MRZ line."""

    ENTITY = "AU_PASSPORT"
    TRIGGERS = (
        *_context_words("passport", "travel"),
        Trigger(r"AUS\d{7}[MFX<]\d{7}", 19, _SHAPE_BEFORE, _SHAPE_AFTER),  # MRZ: no context needed
    )
    _SHAPE = _word_pattern(r"[A-Z]{1,2}\d{7}")
    SHAPES = (
        Shape(
            _SHAPE,
            _on_value(checksums.passport_series_known),
            PASSPORT_CONTEXT,
            None,
            SCORE_FORMAT_WITH_CONTEXT,
            name="passport",
        ),
        # Series letters are not all published (R-series since 2022): other
        # letters still count with context, at a score below blocking level.
        Shape(
            _SHAPE,
            _on_value(checksums.passport_shape_valid),
            PASSPORT_CONTEXT,
            None,
            0.5,
            name="passport (unlisted series)",
        ),
        # Machine-readable zone line 2: number, check digit, nationality AUS.
        Shape(
            re.compile(
                r"(?<![A-Z0-9<])(?P<value>[A-Z]{1,2}\d{7})<?(?P<check>\d)AUS\d{7}[MFX<]\d{7}", re.ASCII
            ),
            _mrz_valid,
            PASSPORT_CONTEXT,
            SCORE_WITH_CONTEXT,
            SCORE_WITH_CONTEXT,
            name="passport MRZ",
        ),
    )


class DriverLicenceRecognizer(IdentifierRecognizer):
    """Driver licence and licence card numbers (6–10 characters, no checksum), context required."""

    ENTITY = "AU_DRIVER_LICENCE"
    TRIGGERS = (
        *_context_words("learner"),
        *_context_phrases(
            (r"driv(?:er|ers|er['\x1a]s|ing)\s*lic", 80),
            (r"licen[cs]e\s+card", 80),
            (r"licence\s+(?:number|no|#)", 80),
        ),
    )
    SHAPES = (
        Shape(
            _word_pattern(
                r"\d{3} \d{3} \d{3,4}"
                r"|\d{2}[ -]\d{2}[ -]\d{4}"
                # 6–10 capitals/digits with at least 4 digits (NSW N49187, SA S123456, QLD 0123456789)
                r"|(?=[A-Z0-9]{6,10}(?![\w-]))(?=(?:[A-Z]*\d){4})[A-Z0-9]{6,10}"
            ),
            _always,
            LICENCE_CONTEXT,
            None,
            SCORE_FORMAT_WITH_CONTEXT,
            name="driver licence",
        ),
    )


class PaymentCardRecognizer(IdentifierRecognizer):
    """Payment cards (Luhn + issuer range), including Mastercard 2-series that Presidio misses."""

    ENTITY = "CREDIT_CARD"
    TRIGGERS = (
        Trigger(r"\d{13}", 13, _SHAPE_BEFORE, _SHAPE_AFTER),
        Trigger(r"\d{4}[ -]\d{4}[ -]\d{4}[ -]\d{4}", 19, _SHAPE_BEFORE, _SHAPE_AFTER),
        Trigger(r"\d{4}[ -]\d{6}[ -]\d{4}", 16, _SHAPE_BEFORE, _SHAPE_AFTER),
    )
    SHAPES = (
        Shape(
            re.compile(
                r"(?<![\w.,/-])(?P<value>\d{13,19}"
                r"|\d{4}(?P<s>[ -])\d{4}(?P=s)\d{4}(?P=s)\d{4}(?:(?P=s)\d{3})?"
                r"|\d{4}(?P<t>[ -])\d{6}(?P=t)\d{4,5})"
                r"(?![\w/-])(?![.,]\d)",
                re.ASCII,
            ),
            _on_value(checksums.payment_card_valid),
            CARD_CONTEXT,
            0.5,
            name="payment card",
        ),
    )


_BSB = re.compile(rf"{_LEAD}(?P<value>\d{{3}}-?\d{{3}}){_TRAIL}", re.ASCII)
_ACCOUNT = re.compile(
    r"(?<![\w.,/-])(?P<value>\d{6,10}|\d{2,4}[ -]\d{3,4}(?:[ -]\d{1,4})?)(?![\w/-])(?![.,]\d)", re.ASCII
)


class BankAccountRecognizer(IdentifierRecognizer):
    """BSB + account number: a BSB with an account number within a short gap, and bank context.

    The span covers both (BSB through account number, or the reverse order).
    """

    ENTITY = "AU_BANK_ACCOUNT"
    # Context is required; the span (BSB through account, ~100 characters) lies within
    # 80/40 characters of it, and an account number is looked for 74 characters back.
    TRIGGERS = (
        *_context_words("bsb", "acct", "account", "a/c", "bank", "eft", "remittance", reach=2 * _WORD_REACH),
        *_context_phrases((r"direct\s+(?:credit|deposit|debit)", 80), reach=2 * _WORD_REACH),
    )

    def candidates(self, text: str) -> Iterator[Candidate]:
        """Pair each BSB-shaped number with the nearest account number on either side."""
        for bsb in _BSB.finditer(text):
            start, end = bsb.span("value")
            account = _account_near(text, start, end)
            if account is None:
                continue
            span = (min(start, account[0]), max(end, account[1]))
            if context_near(text, start, end, BSB_KEYWORD, before=25, after=0):
                yield Candidate(*span, 0.9, "BSB + account: BSB keyword")
            elif context_near(text, *span, BANK_CONTEXT):
                yield Candidate(*span, SCORE_FORMAT_WITH_CONTEXT, "BSB + account: bank context")


def _account_near(text: str, bsb_start: int, bsb_end: int) -> tuple[int, int] | None:
    """The span of an account number just after (preferred) or just before a BSB."""
    for match in _ACCOUNT.finditer(text, bsb_end):
        if match.start() > bsb_end + BANK_ACCOUNT_GAP:
            break
        if checksums.bank_account_number_valid(match.group("value")):
            return match.span("value")
    before: tuple[int, int] | None = None
    for match in _ACCOUNT.finditer(text, max(0, bsb_start - BANK_ACCOUNT_GAP - 14), bsb_start):
        if match.end() <= bsb_start and checksums.bank_account_number_valid(match.group("value")):
            before = match.span("value")
    return before


def au_identifier_recognizers() -> list[EntityRecognizer]:
    """One instance of every recogniser in this module, for the registry."""
    return [
        TfnRecognizer(),
        AbnRecognizer(),
        AcnRecognizer(),
        MedicareRecognizer(),
        HealthcareIdentifierRecognizer(),
        DvaFileNumberRecognizer(),
        CentrelinkCrnRecognizer(),
        PassportRecognizer(),
        DriverLicenceRecognizer(),
        BankAccountRecognizer(),
        PaymentCardRecognizer(),
    ]
