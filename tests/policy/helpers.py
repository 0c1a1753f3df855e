"""Building policies, scans and envelopes for policy tests without the detectors."""

from __future__ import annotations

import textwrap
from pathlib import Path

from detectors.registry import all_entities
from gateway.model import Attachment, Envelope, Finding, ScanResult
from gateway.policy import Policy, load_policy


def finding(
    entity: str, location: str = "body", score: float = 0.9, start: int = 0, **attributes: str
) -> Finding:
    """A finding with a distinct value per (entity, location, start)."""
    return Finding(entity, score, location, "•••", start, start + 3, dict(attributes))


def scan(
    *findings: Finding,
    attachments: tuple[Attachment, ...] = (),
    headers: dict[str, str] | None = None,
    subject: str = "",
    size: int = 1000,
) -> ScanResult:
    return ScanResult(list(findings), list(attachments), [], subject, "<id@x>", dict(headers or {}), size)


def envelope(*recipients: str, sender: str = "alice@agency.gov.au") -> Envelope:
    return Envelope(sender, tuple(recipients))


def write_policy(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def policy(tmp_path: Path, text: str, groups: frozenset[str] | None = None) -> Policy:
    return load_policy(write_policy(tmp_path, text), all_entities(), groups)


def one_rule(tmp_path: Path, when: str, action: str = "hold", extra: str = "") -> Policy:
    """A policy of one rule named 'r' whose `when` is the given YAML flow mapping."""
    return policy(tmp_path, f"rules:\n  - name: r\n    when: {when}\n    action: {action}\n{extra}")
