"""The one place where recognisers are registered.

Presidio's generic recognisers we trust for outbound mail, the Australian ones
Presidio ships disabled, phone numbers with the AU region, and (with the ``ner``
extra) spaCy's named entities.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from presidio_analyzer import EntityRecognizer, PatternRecognizer

from detectors import prefilter
from detectors.au_identifiers import au_identifier_recognizers
from detectors.config import DetectorConfig
from detectors.custom import custom_entities, load_custom_recognizers
from detectors.edm import EdmRecognizer
from detectors.email import OfflineEmailRecognizer
from detectors.fingerprint import FingerprintRecognizer
from detectors.generic import IbanCodeRecognizer, IpAddressRecognizer, PhoneNumberRecognizer
from detectors.markings import ProtectiveMarkingRecognizer
from detectors.markings import postprocess as marking_postprocess
from detectors.phrases import recognizers as phrase_recognizers
from detectors.prefilter import Trigger, WholeText, Windowed
from detectors.secrets import SecretRecognizer
from gateway.model import Finding

# Entity types a recogniser here can emit; policy validation checks against these.
PATTERN_ENTITIES = frozenset(
    {
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
        "DOCUMENT_FINGERPRINT",
        "EDM_MATCH",
        "EMAIL_ADDRESS",
        "IBAN_CODE",
        "IP_ADDRESS",
        "PHONE_NUMBER",
        "PROTECTIVE_MARKING",
        "MARKING_MISMATCH",
        "SECRET",
        "CONFIDENTIAL_PHRASE",
        "SENSITIVE_INFO",
    }
)
NER_ENTITIES = frozenset({"PERSON", "LOCATION", "NRP", "DATE_TIME", "ORGANIZATION"})
# Findings made by the pipeline itself rather than by a recogniser.
PIPELINE_ENTITIES = frozenset({"ENCRYPTED", "UNSCANNABLE", "FILE_TYPE_MISMATCH", "FINDINGS_LIMIT"})


def pattern_recognizers(config: DetectorConfig) -> list[EntityRecognizer]:
    """Every recogniser that needs no NLP model, each with its prefilter spec attached."""
    recognizers = [
        *au_identifier_recognizers(),  # replace Presidio's AU and credit-card recognisers
        OfflineEmailRecognizer(),
        IbanCodeRecognizer(),
        IpAddressRecognizer(),
        PhoneNumberRecognizer(),
        *([EdmRecognizer(config.edm_index)] if config.edm_index else []),
        *([FingerprintRecognizer(config.fingerprint_db)] if config.fingerprint_db else []),
        ProtectiveMarkingRecognizer(),
        SecretRecognizer(),
        *phrase_recognizers(),
        *load_custom_recognizers(config.recognizers_dir),  # agency YAML, validated here
    ]
    for recognizer in recognizers:
        prefilter.attach(recognizer, prefilter_spec(recognizer))
    return recognizers


# --- prefilter metadata (see detectors.prefilter) -----------------------------------------

# A custom regex match starts this far at most before the start of its trigger.
_NEAR = 24


def prefilter_spec(recognizer: EntityRecognizer) -> prefilter.Spec | None:
    """How the fast path may run ``recognizer``; None runs it on the whole text with NLP artifacts."""
    if isinstance(recognizer, EdmRecognizer | FingerprintRecognizer):
        return WholeText()  # windows of records / shingles of the whole document
    hook = getattr(recognizer, "prefilter_spec", None)
    if callable(hook):
        spec = hook()
        return spec if isinstance(spec, prefilter.Windowed | prefilter.Anchored | WholeText) else None
    if type(recognizer) is PatternRecognizer:
        return custom_spec(recognizer)
    return None


def custom_spec(recognizer: PatternRecognizer) -> Windowed | WholeText:
    """Agency YAML patterns as Hyperscan prefilter-mode triggers, where they can be.

    Prefilter mode accepts look-arounds and back-references by matching a
    superset (see :func:`prefilter.trigger_source`).  Deny lists and patterns
    that cannot be triggers run on the whole text (a regex scan; context words
    are still read per result).
    """
    patterns: list[Any] = list(getattr(recognizer, "patterns", None) or [])
    if getattr(recognizer, "deny_list", None) or not patterns:
        return WholeText()
    triggers = []
    for pattern in patterns:
        source = prefilter.trigger_source(pattern.regex)
        if source is None:
            return WholeText()
        triggers.append(Trigger(source, CUSTOM_MAX_MATCH, _NEAR, 64, True, prefilter_mode=True))
    return Windowed(tuple(triggers))


# Hyperscan reports where a match ends; windows reach this far back for its start.
CUSTOM_MAX_MATCH = 1_000


def all_entities(recognizers_dir: Path | None = None) -> frozenset[str]:
    """Every entity type a policy may name, the agency's own recognisers' included."""
    return PATTERN_ENTITIES | NER_ENTITIES | PIPELINE_ENTITIES | custom_entities(recognizers_dir)


def postprocess(findings: list[Finding]) -> list[Finding]:
    """Findings about the message as a whole, derived from the per-segment ones.

    Runs once per message after every segment is analysed (e.g. a marking in an
    attachment that is higher than the marking in the header).
    """
    findings = marking_postprocess(findings)
    return _drop_shadowed(findings)


# Generic types that a specific identifier on the same text explains better
# (a Medicare number also parses as a phone number in some regions).
SHADOWABLE = frozenset({"PHONE_NUMBER"})


def _drop_shadowed(findings: list[Finding]) -> list[Finding]:
    specific = [f for f in findings if f.entity_type not in SHADOWABLE and f.end > f.start]

    def shadowed(f: Finding) -> bool:
        return f.entity_type in SHADOWABLE and any(
            o.location == f.location and o.start < f.end and f.start < o.end and o.score >= f.score
            for o in specific
        )

    return [f for f in findings if not shadowed(f)]
