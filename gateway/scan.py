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
from detectors.result_cache import ResultCache
from gateway.extract import ExtractLimits, Extractor, unscannable
from gateway.model import Extraction, ScanResult
from gateway.parse import parse_message


@dataclass
class Scanner:
    """Holds the analyzer (built once) and the extraction limits."""

    detector: Detector
    extractor: Extractor = field(default_factory=Extractor)

    @classmethod
    def build(cls, config: DetectorConfig, limits: ExtractLimits | None = None) -> Scanner:
        """Build the analyzer once; reuse the Scanner for every message."""
        detector = Detector(
            build_analyzer(config),
            min_score=config.min_score,
            max_per_type=config.max_findings_per_type,
            cache=ResultCache(config.result_cache_entries),
        )
        return cls(detector, Extractor(limits or ExtractLimits()))

    def scan(self, raw: bytes) -> ScanResult:
        """Everything found in one raw RFC 5322 message."""
        started = time.perf_counter()
        parsed = parse_message(raw)
        extraction = Extraction(segments=list(parsed.segments))
        for location in parsed.too_deep:
            extraction.findings.append(unscannable(location, "limit:max_depth"))
        budget = self.extractor.new_budget()  # one text limit across all of a message's parts
        for part in parsed.parts:
            extraction.extend(
                self.extractor.extract(
                    part.data,
                    filename=part.filename,
                    declared_type=part.declared_type,
                    charset=part.charset,
                    location=part.location,
                    budget=budget,
                )
            )
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
