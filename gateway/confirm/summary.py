"""What a sender is shown about their message: types, counts, places, masked excerpts, guidance.

Built from findings and rule hits only, which carry masked excerpts and never
values.  The subject is the one piece of the original shown verbatim, so any
detected value in it is masked first (or the subject is withheld).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from detectors.masking import mask
from gateway.model import Finding

MAX_EXCERPTS = 5
WITHHELD_SUBJECT = "(subject not shown: it contains detected information)"


@dataclass(frozen=True)
class FoundType:
    """All findings of one entity type."""

    entity_type: str
    count: int
    locations: tuple[str, ...]
    excerpts: tuple[str, ...]


@dataclass(frozen=True)
class RuleNote:
    """A rule that fired, as its author explained it."""

    name: str
    description: str
    guidance: str


@dataclass(frozen=True)
class Summary:
    ident: str
    subject: str
    sender: str
    recipients: tuple[str, ...]
    found: tuple[FoundType, ...]
    rules: tuple[RuleNote, ...]


def summarise(
    ident: str,
    subject: str,
    sender: str,
    recipients: list[str],
    findings: list[Finding],
    rules: list[dict[str, Any]],
) -> Summary:
    """``subject`` must already be safe (see ``safe_subject``); ``rules`` as stored (``RuleHit.to_json``)."""
    return Summary(ident, subject, sender, tuple(recipients), _group(findings), _notes(rules))


def safe_subject(subject: str, findings: list[Finding]) -> str:
    """The subject with every value detected in it masked; withheld if that cannot be done exactly."""
    spans = sorted((f for f in findings if f.location == "subject"), key=lambda f: f.start, reverse=True)
    text = subject
    for finding in spans:
        value = text[finding.start : finding.end] if 0 <= finding.start < finding.end <= len(text) else ""
        if not value or mask(value, finding.entity_type) != finding.excerpt:
            return WITHHELD_SUBJECT
        text = text[: finding.start] + finding.excerpt + text[finding.end :]
    return " ".join(text.split()) or "(no subject)"


def _group(findings: list[Finding]) -> tuple[FoundType, ...]:
    by_type: dict[str, list[Finding]] = defaultdict(list)
    for finding in findings:
        by_type[finding.entity_type].append(finding)
    return tuple(
        FoundType(
            entity_type=kind,
            count=len(group),
            locations=tuple(dict.fromkeys(f.location for f in group)),
            excerpts=tuple(dict.fromkeys(f.excerpt for f in group))[:MAX_EXCERPTS],
        )
        for kind, group in sorted(by_type.items())
    )


def _notes(rules: list[dict[str, Any]]) -> tuple[RuleNote, ...]:
    # Monitor-mode rules were not enforced: telling the sender about them would only confuse.
    return tuple(
        RuleNote(str(r["name"]), str(r.get("description", "")), str(r.get("guidance", "")))
        for r in rules
        if not r.get("monitor")
    )
