"""The one place where recognisers are registered.

Presidio's generic recognisers we trust for outbound mail, the Australian ones
Presidio ships disabled, phone numbers with the AU region, and (with the ``ner``
extra) spaCy's named entities.
"""

from __future__ import annotations

from presidio_analyzer import EntityRecognizer
from presidio_analyzer.predefined_recognizers import (
    AuAbnRecognizer,
    AuAcnRecognizer,
    AuMedicareRecognizer,
    AuTfnRecognizer,
    CreditCardRecognizer,
    IbanRecognizer,
    IpRecognizer,
    PhoneRecognizer,
)

from detectors.config import DetectorConfig
from detectors.email import OfflineEmailRecognizer
from gateway.model import Finding

PHONE_REGIONS = ("AU", "NZ", "GB", "US")

# Entity types a recogniser here can emit; policy validation checks against these.
PATTERN_ENTITIES = frozenset(
    {
        "AU_TFN",
        "AU_ABN",
        "AU_ACN",
        "AU_MEDICARE",
        "CREDIT_CARD",
        "EMAIL_ADDRESS",
        "IBAN_CODE",
        "IP_ADDRESS",
        "PHONE_NUMBER",
    }
)
NER_ENTITIES = frozenset({"PERSON", "LOCATION", "NRP", "DATE_TIME", "ORGANIZATION"})
# Findings made by the pipeline itself rather than by a recogniser.
PIPELINE_ENTITIES = frozenset({"ENCRYPTED", "UNSCANNABLE", "FILE_TYPE_MISMATCH"})


def pattern_recognizers(config: DetectorConfig) -> list[EntityRecognizer]:
    """Every recogniser that needs no NLP model."""
    return [
        AuTfnRecognizer(),
        AuAbnRecognizer(),
        AuAcnRecognizer(),
        AuMedicareRecognizer(),
        CreditCardRecognizer(),
        OfflineEmailRecognizer(),
        IbanRecognizer(),
        IpRecognizer(),
        PhoneRecognizer(supported_regions=list(PHONE_REGIONS)),
    ]


def all_entities() -> frozenset[str]:
    """Every entity type a policy may name."""
    return PATTERN_ENTITIES | NER_ENTITIES | PIPELINE_ENTITIES


def postprocess(findings: list[Finding]) -> list[Finding]:
    """Findings about the message as a whole, derived from the per-segment ones.

    Runs once per message after every segment is analysed (e.g. a marking in an
    attachment that is higher than the marking in the header).
    """
    return findings
