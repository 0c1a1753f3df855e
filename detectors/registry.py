"""The one place where recognisers are registered.

Presidio's generic recognisers we trust for outbound mail, the Australian ones
Presidio ships disabled, phone numbers with the AU region, and (with the ``ner``
extra) spaCy's named entities.
"""

from __future__ import annotations

from pathlib import Path

from presidio_analyzer import EntityRecognizer
from presidio_analyzer.predefined_recognizers import (
    IbanRecognizer,
    IpRecognizer,
    PhoneRecognizer,
)

from detectors.au_identifiers import au_identifier_recognizers
from detectors.config import DetectorConfig
from detectors.custom import custom_entities, load_custom_recognizers
from detectors.edm import EdmRecognizer
from detectors.email import OfflineEmailRecognizer
from detectors.fingerprint import FingerprintRecognizer
from detectors.markings import ProtectiveMarkingRecognizer
from detectors.markings import postprocess as marking_postprocess
from detectors.phrases import recognizers as phrase_recognizers
from detectors.secrets import SecretRecognizer
from gateway.model import Finding

PHONE_REGIONS = ("AU", "NZ", "GB", "US")

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
PIPELINE_ENTITIES = frozenset({"ENCRYPTED", "UNSCANNABLE", "FILE_TYPE_MISMATCH"})


def pattern_recognizers(config: DetectorConfig) -> list[EntityRecognizer]:
    """Every recogniser that needs no NLP model."""
    return [
        *au_identifier_recognizers(),  # replace Presidio's AU and credit-card recognisers
        OfflineEmailRecognizer(),
        IbanRecognizer(),
        IpRecognizer(),
        PhoneRecognizer(supported_regions=list(PHONE_REGIONS)),
        *([EdmRecognizer(config.edm_index)] if config.edm_index else []),
        *([FingerprintRecognizer(config.fingerprint_db)] if config.fingerprint_db else []),
        ProtectiveMarkingRecognizer(),
        SecretRecognizer(),
        *phrase_recognizers(),
        *load_custom_recognizers(config.recognizers_dir),  # agency YAML, validated here
    ]


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
