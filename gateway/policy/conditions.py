"""Policy conditions: each kind of test a rule can make, in one small named class.

A condition answers one question about a message (and, where it depends on
it, one recipient).  Parsers are registered by the YAML key that introduces
them, so adding a kind of condition is adding one class and one entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.model import Envelope, Finding, ScanResult
from gateway.policy.loader import Mark, MarkedDict, MarkedList, PolicyError


@dataclass(frozen=True)
class Facts:
    """What conditions look at: the scan, the envelope and the agency's domains."""

    scan: ScanResult
    envelope: Envelope
    internal_domains: tuple[str, ...] = ()

    def is_internal(self, address: str) -> bool:
        domain = address.rpartition("@")[2].lower().rstrip(".")
        return any(domain == d or domain.endswith("." + d) for d in self.internal_domains)


class Condition(Protocol):
    """A test over the facts, for one recipient."""

    per_recipient: bool

    def matches(self, facts: Facts, recipient: str) -> bool: ...


@dataclass(frozen=True)
class Check:
    """What a parser needs to validate: the entity types the detectors provide."""

    known_entities: frozenset[str]


Parser = Callable[[Any, Mark, Check], Condition]


@dataclass(frozen=True)
class FindingsCondition:
    """Findings of the given types, at or above a score, at least ``min_count`` distinct values."""

    entities: frozenset[str]
    min_score: float = 0.5
    min_count: int = 1
    per_recipient: bool = False

    def matches(self, facts: Facts, recipient: str) -> bool:
        return count_distinct(self.selected(facts.scan.findings)) >= self.min_count

    def selected(self, findings: list[Finding]) -> list[Finding]:
        return [f for f in findings if f.entity_type in self.entities and f.score >= self.min_score]


def count_distinct(findings: list[Finding]) -> int:
    """Distinct values: the same TFN in the text and HTML alternative counts once."""
    keys = {f.value_key or f"{f.entity_type}|{f.location}|{f.start}" for f in findings}
    return len(keys)


@dataclass(frozen=True)
class RecipientCondition:
    """The recipient is ``internal`` (one of the agency's domains or their subdomains) or ``external``."""

    kind: str
    per_recipient: bool = True

    def matches(self, facts: Facts, recipient: str) -> bool:
        internal = facts.is_internal(recipient)
        return internal if self.kind == "internal" else not internal


@dataclass(frozen=True)
class AllOf:
    conditions: tuple[Condition, ...]

    @property
    def per_recipient(self) -> bool:
        return any(c.per_recipient for c in self.conditions)

    def matches(self, facts: Facts, recipient: str) -> bool:
        return all(c.matches(facts, recipient) for c in self.conditions)


@dataclass(frozen=True)
class AnyOf:
    conditions: tuple[Condition, ...]

    @property
    def per_recipient(self) -> bool:
        return any(c.per_recipient for c in self.conditions)

    def matches(self, facts: Facts, recipient: str) -> bool:
        return any(c.matches(facts, recipient) for c in self.conditions)


@dataclass(frozen=True)
class Not:
    condition: Condition

    @property
    def per_recipient(self) -> bool:
        return self.condition.per_recipient

    def matches(self, facts: Facts, recipient: str) -> bool:
        return not self.condition.matches(facts, recipient)


def parse_condition(raw: Any, mark: Mark, check: Check) -> Condition:
    """A ``when:`` mapping → one Condition (several keys mean all of them)."""
    if not isinstance(raw, MarkedDict) or not raw:
        raise PolicyError([(mark, "a condition must be a mapping such as {findings: …}")])
    parts: list[Condition] = []
    problems: list[tuple[Mark, str]] = []
    for key, value in raw.items():
        parser = PARSERS.get(key)
        if parser is None:
            known = ", ".join(sorted(PARSERS))
            problems.append((raw.mark_of(key), f"unknown condition '{key}' (known: {known})"))
            continue
        try:
            parts.append(parser(value, raw.mark_of(key), check))
        except PolicyError as exc:
            problems.extend(exc.problems)
    if problems:
        raise PolicyError(problems)
    return parts[0] if len(parts) == 1 else AllOf(tuple(parts))


def _parse_list(raw: Any, mark: Mark, check: Check) -> tuple[Condition, ...]:
    if not isinstance(raw, MarkedList) or not raw:
        raise PolicyError([(mark, "expected a non-empty list of conditions")])
    return tuple(parse_condition(item, getattr(item, "mark", raw.mark), check) for item in raw)


def _parse_findings(raw: Any, mark: Mark, check: Check) -> Condition:
    if not isinstance(raw, MarkedDict):
        raise PolicyError([(mark, "'findings' must be a mapping with 'entities'")])
    allowed = {"entities", "min_score", "min_count"}
    problems = [(raw.mark_of(k), f"unknown key '{k}' in findings") for k in raw if k not in allowed]
    entities = raw.get("entities")
    if isinstance(entities, str):
        entities = [entities]
    if not isinstance(entities, list) or not entities or not all(isinstance(e, str) for e in entities):
        problems.append((raw.mark_of("entities"), "'entities' must be a list of entity type names"))
        entities = []
    for entity in entities:
        if entity not in check.known_entities:
            problems.append((raw.mark_of("entities"), f"unknown entity type '{entity}'"))
    min_score = raw.get("min_score", 0.5)
    if isinstance(min_score, bool) or not isinstance(min_score, int | float) or not 0 <= min_score <= 1:
        problems.append((raw.mark_of("min_score"), "'min_score' must be a number from 0 to 1"))
        min_score = 0.5
    min_count = raw.get("min_count", 1)
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        problems.append((raw.mark_of("min_count"), "'min_count' must be a whole number ≥ 1"))
        min_count = 1
    if problems:
        raise PolicyError(problems)
    return FindingsCondition(frozenset(entities), float(min_score), min_count)


def _parse_recipient(raw: Any, mark: Mark, check: Check) -> Condition:
    if raw not in ("internal", "external"):
        raise PolicyError([(mark, "'recipient' must be 'internal' or 'external'")])
    return RecipientCondition(raw)


def _parse_not(raw: Any, mark: Mark, check: Check) -> Condition:
    return Not(parse_condition(raw, getattr(raw, "mark", mark), check))


PARSERS: dict[str, Parser] = {
    "findings": _parse_findings,
    "recipient": _parse_recipient,
    "all": lambda raw, mark, check: AllOf(_parse_list(raw, mark, check)),
    "any": lambda raw, mark, check: AnyOf(_parse_list(raw, mark, check)),
    "not": _parse_not,
}
