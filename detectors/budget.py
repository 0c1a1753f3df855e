"""How many findings of each type one message reports before counting stops.

A spreadsheet of 150,000 client records holds 150,000 phone numbers; validating
each costs tens of microseconds, and no policy needs the exact count (its
thresholds are in the tens).  So detection of a type stops once one more than
the limit has been found, the first ``limit`` findings (in document order) are
kept, and a ``FINDINGS_LIMIT`` finding says which type was cut short, so the
console shows "1,000 or more" and redaction refuses instead of leaving values
behind.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from presidio_analyzer import RecognizerResult

from gateway.model import Finding

LIMIT_ENTITY = "FINDINGS_LIMIT"


@dataclass
class FindingBudget:
    """Counts per entity type for one message (``limit`` 0: no limit)."""

    limit: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    location: str = ""  # the segment being scanned (set by the caller)
    # Types whose detection stopped early, and where: their count may include results
    # found twice by overlapping windows, so stopping is recorded, not inferred.
    stopped: dict[str, str] = field(default_factory=dict)

    def count(self, results: Iterable[RecognizerResult], min_score: float) -> None:
        """Count results that will be reported (those at or above ``min_score``)."""
        self.count_types(r.entity_type for r in results if r.score >= min_score)

    def count_types(self, entity_types: Iterable[str]) -> None:
        """Count one finding of each type in ``entity_types``."""
        if self.limit:
            self.counts.update(entity_types)

    def over(self) -> bool:
        """Whether more than the limit of some type has been found, or detection of one stopped."""
        return bool(self.stopped) or (bool(self.limit) and any(n > self.limit for n in self.counts.values()))

    def stop(self, entities: Iterable[str]) -> None:
        """Record that detection of ``entities`` stopped in the current segment."""
        for entity in entities:
            self.stopped.setdefault(entity, self.location)

    def spent(self, entities: Iterable[str]) -> bool:
        """Whether more than the limit of every one of ``entities`` has been found."""
        return bool(self.limit) and all(self.counts[e] > self.limit for e in entities)

    def apply(self, findings: list[Finding]) -> list[Finding]:
        """The first ``limit`` findings of each type, and a FINDINGS_LIMIT finding per type cut."""
        if not self.limit:
            return findings
        kept: list[Finding] = []
        seen: Counter[str] = Counter()
        cut: dict[str, str] = {}  # entity type → location of its first finding not kept
        for finding in findings:
            seen[finding.entity_type] += 1
            if seen[finding.entity_type] <= self.limit:
                kept.append(finding)
            else:
                cut.setdefault(finding.entity_type, finding.location)
        for entity, location in self.stopped.items():
            cut.setdefault(entity, location)
        return kept + [self._limit_finding(entity, location) for entity, location in cut.items()]

    def _limit_finding(self, entity: str, location: str) -> Finding:
        return Finding(
            entity_type=LIMIT_ENTITY,
            score=1.0,
            location=location,
            excerpt="",
            attributes={"entity": entity, "limit": str(self.limit)},
        )


def limited_entities(findings: Iterable[Finding]) -> set[str]:
    """Entity types whose counting stopped at the limit in one scan."""
    return {f.attributes.get("entity", "") for f in findings if f.entity_type == LIMIT_ENTITY}
