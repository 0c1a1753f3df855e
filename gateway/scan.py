"""Scan one message: parse → extract → detect.  Pure CPU work, run in worker processes.

The same ``Scanner`` serves the SMTP path (through ``workers.ScannerPool``), the
offline ``dlp-gateway scan`` command and the benchmarks, so all of them see the
same findings for the same bytes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from detectors import registry
from detectors.config import DetectorConfig
from detectors.engine import Detector, build_analyzer
from gateway.extract import ExtractLimits, extract_part, unscannable
from gateway.model import Extraction, ScanResult, Segment
from gateway.parse import parse_message


@dataclass
class Scanner:
    """Holds the analyzer (built once) and the extraction limits."""

    detector: Detector
    limits: ExtractLimits = field(default_factory=ExtractLimits)

    @classmethod
    def build(cls, config: DetectorConfig, limits: ExtractLimits | None = None) -> Scanner:
        """Build the analyzer once; reuse the Scanner for every message."""
        return cls(Detector(build_analyzer(config), min_score=config.min_score), limits or ExtractLimits())

    def scan(self, raw: bytes) -> ScanResult:
        """Everything found in one raw RFC 5322 message."""
        started = time.perf_counter()
        parsed = parse_message(raw)
        extraction = Extraction(segments=list(parsed.segments))
        for location in parsed.too_deep:
            extraction.findings.append(unscannable(location, "limit:max_depth"))
        budget = self.limits.max_text_bytes
        for part in parsed.parts:
            result = extract_part(
                part.data,
                filename=part.filename,
                declared_type=part.declared_type,
                charset=part.charset,
                location=part.location,
                limits=self.limits,
            )
            budget = _enforce_text_budget(result, budget)
            extraction.extend(result)
        findings = registry.postprocess(self.detector.analyze(extraction.segments) + extraction.findings)
        return ScanResult(
            findings=findings,
            attachments=extraction.attachments,
            defects=parsed.defects,
            subject=parsed.subject,
            message_id=parsed.message_id,
            headers=parsed.headers,
            size=len(raw),
            scanned_bytes=sum(len(s.text) for s in extraction.segments),
            duration_ms=(time.perf_counter() - started) * 1000,
        )


def _enforce_text_budget(result: Extraction, budget: int) -> int:
    """Cut extracted text at the per-message limit, and say so, rather than scan unboundedly."""
    kept: list[Segment] = []
    for segment in result.segments:
        if budget <= 0:
            result.findings.append(unscannable(segment.location, "limit:max_text_bytes"))
            continue
        if len(segment.text) > budget:
            result.findings.append(unscannable(segment.location, "limit:max_text_bytes"))
            segment = Segment(segment.location, segment.text[:budget])
        budget -= len(segment.text)
        kept.append(segment)
    result.segments = kept
    return budget
