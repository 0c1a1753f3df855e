"""Data that flows between the pipeline stages.

SMTP → parse → extract → detect → decide → act → store/relay.  Every stage takes
and returns these plain dataclasses, so each can be tested on its own and the
scanning stages can run in another process (everything here pickles).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Envelope:
    """The SMTP envelope as the client gave it, parameters included."""

    sender: str
    recipients: tuple[str, ...]
    mail_options: tuple[str, ...] = ()
    rcpt_options: tuple[tuple[str, ...], ...] = ()
    client_address: str = ""
    helo: str = ""


@dataclass(frozen=True)
class Segment:
    """A piece of text a person could read, with where it came from.

    ``location`` is what findings and the console show: ``subject``, ``body``,
    ``header:X-Protective-Marking``, ``attachment[2]:export.zip/clients.xlsx#Sheet2``.
    """

    location: str
    text: str


@dataclass(frozen=True)
class Finding:
    """One thing a detector found.  ``excerpt`` is always masked."""

    entity_type: str
    score: float
    location: str
    excerpt: str
    start: int = 0
    end: int = 0
    attributes: dict[str, str] = field(default_factory=dict)
    # Keyed hash of the value, to count distinct values within one scan; the key
    # lives only in the scanning process, so this is never stored or shown.
    value_key: str = field(default="", compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "entity_type": self.entity_type,
            "score": round(self.score, 3),
            "location": self.location,
            "excerpt": self.excerpt,
        }
        if self.attributes:
            data["attributes"] = dict(self.attributes)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Finding:
        return cls(
            entity_type=data["entity_type"],
            score=float(data["score"]),
            location=data["location"],
            excerpt=data["excerpt"],
            attributes=dict(data.get("attributes", {})),
        )


@dataclass(frozen=True)
class Attachment:
    """What the extractor learnt about one attachment (or archive member)."""

    location: str
    filename: str
    declared_type: str
    real_type: str
    size: int
    sha256: str


@dataclass
class Extraction:
    """Output of extracting one MIME part: text to scan plus findings about the part itself
    (``ENCRYPTED``, ``UNSCANNABLE``, ``FILE_TYPE_MISMATCH``)."""

    segments: list[Segment] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)

    def extend(self, other: Extraction) -> None:
        self.segments.extend(other.segments)
        self.findings.extend(other.findings)
        self.attachments.extend(other.attachments)


@dataclass
class ScanResult:
    """Everything the scanner learnt about one message."""

    findings: list[Finding]
    attachments: list[Attachment]
    defects: list[str]
    subject: str
    message_id: str
    headers: dict[str, str]
    size: int
    scanned_bytes: int = 0
    duration_ms: float = 0.0


class Action(enum.IntEnum):
    """Policy actions, ordered by severity: the most severe one wins."""

    PASS = 0
    NOTIFY = 1
    REDACT = 2
    WARN = 3
    HOLD = 4
    REJECT = 5

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, name: str) -> Action:
        return cls[name.upper()]


@dataclass(frozen=True)
class RuleHit:
    """A rule that fired, with what the policy author wrote about it."""

    name: str
    action: Action
    description: str = ""
    guidance: str = ""
    message: str = ""
    monitor: bool = False
    # Which recipients it fired for, and the findings behind it (excerpts masked).
    recipients: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "action": self.action.label,
            "description": self.description,
            "guidance": self.guidance,
            "monitor": self.monitor,
        }
        if self.recipients:
            data["recipients"] = list(self.recipients)
        if self.findings:
            data["findings"] = [f.to_json() for f in self.findings]
        return data


@dataclass(frozen=True)
class Redaction:
    """What a redact rule asks for: which entity types, and the presidio-anonymizer operator."""

    entities: tuple[str, ...]
    operator: str = "mask"
    params: tuple[tuple[str, Any], ...] = ()
    min_score: float = 0.5


@dataclass
class Decision:
    """The policy's verdict: one action per recipient, and why."""

    per_recipient: dict[str, Action]
    hits: list[RuleHit]
    reject_message: str = ""
    # What the decision would be with monitor-mode rules enforced too (simulation).
    monitor_per_recipient: dict[str, Action] = field(default_factory=dict)
    # Modifiers from the enforced rules that fired.
    add_headers: dict[str, str] = field(default_factory=dict)
    subject_prefix: str = ""
    copy_to: list[str] = field(default_factory=list)
    notify_reviewers: list[str] = field(default_factory=list)
    redactions: list[Redaction] = field(default_factory=list)
    # Things the act stage changed (e.g. a redaction that could not be done became a hold).
    notes: list[str] = field(default_factory=list)

    @property
    def action(self) -> Action:
        """The overall (most severe) action."""
        return max(self.per_recipient.values(), default=Action.PASS)

    @property
    def monitor_action(self) -> Action:
        """The overall action had monitor rules been enforced."""
        return max(self.monitor_per_recipient.values(), default=self.action)

    def recipients_with(self, action: Action) -> list[str]:
        return [r for r, a in self.per_recipient.items() if a == action]

    @property
    def rule_names(self) -> list[str]:
        return [h.name for h in self.hits]
