"""What the detectors need from the settings file, in one small picklable object."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DetectorConfig:
    """Detector options; each worker process builds its engine from one of these."""

    ner: bool = False  # spaCy NER (PERSON, LOCATION, …) when the policy needs it
    min_score: float = 0.3
    recognizers_dir: Path | None = None  # agency-defined YAML recognisers
    edm_index: Path | None = None  # exact-data-match index built by `dlp-gateway edm build`
    fingerprint_db: Path | None = None  # registered documents, `dlp-gateway fingerprint add`
    # Findings of one type reported per message; past it a FINDINGS_LIMIT finding says
    # counting stopped (0: no limit).  Bounds the cost of a spreadsheet of records.
    max_findings_per_type: int = 1000
    # Segments whose findings each worker remembers by text digest (0: off).
    result_cache_entries: int = 256
