"""Policy conditions: each kind of test a rule can make, in one small named class.

A condition answers one question about a message (and, where it depends on
it, one recipient), and can name the findings behind a match (``evidence``) so a
decision explains itself.  Parsers are registered by the YAML key that
introduces them, so adding a kind of condition is adding one class and one entry.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Protocol

import regex

from gateway.model import Finding
from gateway.policy.facts import LEVELS, Facts, RecipientProfile, level_rank
from gateway.policy.fields import Fields
from gateway.policy.loader import Mark, MarkedDict, MarkedList, PolicyError

__all__ = ["PARSERS", "Check", "Condition", "Facts", "parse_condition"]

# Regexes run on untrusted text: bounded pattern, bounded input, bounded time.
MAX_PATTERN = 1000
MAX_SCANNED_TEXT = 8192
REGEX_TIMEOUT_S = 0.05

RECIPIENT_KINDS: dict[str, Callable[[RecipientProfile], bool]] = {
    "internal": lambda p: p.internal,
    "external": lambda p: not p.internal,
    "partner": lambda p: p.partner,
    "webmail": lambda p: p.webmail,
    "posting": lambda p: p.posting,
    "lookalike": lambda p: p.lookalike is not None,
    "new_domain": lambda p: p.new_domain,
}


class Condition(Protocol):
    """A test over the facts, for one recipient."""

    @property
    def per_recipient(self) -> bool: ...

    def matches(self, facts: Facts, recipient: str) -> bool: ...

    def evidence(self, facts: Facts, recipient: str) -> list[Finding]: ...


@dataclass(frozen=True)
class Check:
    """What parsers validate against: entity types the detectors provide, and sender
    groups the directory defines (None: no directory loaded, group names not checked)."""

    known_entities: frozenset[str]
    known_groups: frozenset[str] | None = None


Parser = Callable[[Any, Mark, Check], Condition]


class MessageLevel:
    """Mixin for conditions about the message as a whole (same answer for every recipient)."""

    per_recipient = False

    def evidence(self, facts: Facts, recipient: str) -> list[Finding]:
        return []


@dataclass(frozen=True)
class FindingsCondition:
    """Findings of the given types at or above a score, at least ``min_count`` distinct values,
    across the message or (``per_location``) within one location; ``location`` filters by glob."""

    entities: frozenset[str]
    min_score: float = 0.5
    min_count: int = 1
    per_location: bool = False
    location: tuple[str, ...] = ()
    per_recipient = False

    def matches(self, facts: Facts, recipient: str) -> bool:
        return bool(self.evidence(facts, recipient))

    def evidence(self, facts: Facts, recipient: str) -> list[Finding]:
        chosen = self.selected(facts.scan.findings)
        if not self.per_location:
            return chosen if count_distinct(chosen) >= self.min_count else []
        by_location: dict[str, list[Finding]] = defaultdict(list)
        for finding in chosen:
            by_location[finding.location].append(finding)
        return [f for group in by_location.values() if count_distinct(group) >= self.min_count for f in group]

    def selected(self, findings: list[Finding]) -> list[Finding]:
        return [
            f
            for f in findings
            if f.entity_type in self.entities
            and f.score >= self.min_score
            and (not self.location or any(fnmatchcase(f.location, p) for p in self.location))
        ]


def count_distinct(findings: list[Finding]) -> int:
    """Distinct values: the same TFN in the text and HTML alternative counts once."""
    keys = {f.value_key or f"{f.entity_type}|{f.location}|{f.start}" for f in findings}
    return len(keys)


@dataclass(frozen=True)
class MarkingCondition:
    """The effective protective marking is at least (or below) a level and carries a caveat."""

    at_least: int | None = None
    below: int | None = None
    caveats: frozenset[str] = frozenset()
    per_recipient = False

    def matches(self, facts: Facts, recipient: str) -> bool:
        marking = facts.marking()
        if marking is None:
            # Unmarked mail counts as below every level, so `below` can catch it.
            return self.at_least is None and not self.caveats and self.below is not None
        if self.at_least is not None and marking.rank < self.at_least:
            return False
        if self.below is not None and marking.rank >= self.below:
            return False
        return not self.caveats or bool(self.caveats & marking.caveats)

    def evidence(self, facts: Facts, recipient: str) -> list[Finding]:
        marking = facts.marking()
        return list(marking.findings) if marking and self.matches(facts, recipient) else []


@dataclass(frozen=True)
class RecipientCondition:
    """The recipient is of one of ``kinds``, and its domain/address matches the globs given."""

    kinds: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    per_recipient = True

    def matches(self, facts: Facts, recipient: str) -> bool:
        profile = facts.recipient(recipient)
        if self.kinds and not any(RECIPIENT_KINDS[k](profile) for k in self.kinds):
            return False
        if self.domains and not any(fnmatchcase(profile.domain, d) for d in self.domains):
            return False
        return not self.addresses or any(fnmatchcase(recipient.lower(), a) for a in self.addresses)

    def evidence(self, facts: Facts, recipient: str) -> list[Finding]:
        return []


@dataclass(frozen=True)
class ExposedRecipients(MessageLevel):
    """At least ``min`` addresses visible to everyone in To/Cc (a Bcc mistake), external ones only
    unless ``external_only`` is false."""

    minimum: int
    external_only: bool = True

    def matches(self, facts: Facts, recipient: str) -> bool:
        addresses = facts.exposed_addresses()
        if self.external_only:
            addresses = [a for a in addresses if not facts.is_internal(a)]
        return len(addresses) >= self.minimum


@dataclass(frozen=True)
class SenderCondition(MessageLevel):
    """The sender's address, domain and directory groups (each given key must match)."""

    addresses: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    groups: frozenset[str] = frozenset()

    def matches(self, facts: Facts, recipient: str) -> bool:
        sender = facts.envelope.sender.lower()
        domain = sender.rpartition("@")[2]
        if self.addresses and not any(fnmatchcase(sender, a) for a in self.addresses):
            return False
        if self.domains and not any(fnmatchcase(domain, d) for d in self.domains):
            return False
        return not self.groups or bool(self.groups & facts.sender_groups())


@dataclass(frozen=True)
class AttachmentsCondition(MessageLevel):
    """At least ``min_count`` attachments of a real type / name, each at least ``min_size`` bytes,
    or (``total_size``) attachments adding up to at least that many bytes."""

    real_types: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    min_size: int = 0
    min_count: int = 1
    total_size: int = 0

    def matches(self, facts: Facts, recipient: str) -> bool:
        chosen = [
            a
            for a in facts.scan.attachments
            if a.size >= self.min_size
            and (not self.real_types or any(fnmatchcase(a.real_type.lower(), t) for t in self.real_types))
            and (not self.names or any(fnmatchcase(a.filename.lower(), n) for n in self.names))
        ]
        return len(chosen) >= self.min_count and sum(a.size for a in chosen) >= self.total_size


@dataclass(frozen=True)
class HeaderCondition(MessageLevel):
    """A header (or the subject) matches a regular expression compiled at load."""

    name: str
    pattern: regex.Pattern[str]

    def matches(self, facts: Facts, recipient: str) -> bool:
        if self.name.lower() == "subject":
            value = facts.scan.subject
        else:
            value = next((v for k, v in facts.scan.headers.items() if k.lower() == self.name.lower()), "")
        try:
            return self.pattern.search(value[:MAX_SCANNED_TEXT], timeout=REGEX_TIMEOUT_S) is not None
        except TimeoutError:
            # A pathological header must not stall the gateway; treat it as a match, so it is looked at.
            return True


@dataclass(frozen=True)
class SizeCondition(MessageLevel):
    """The whole message is at least ``minimum`` (and under ``maximum``) bytes."""

    minimum: int = 0
    maximum: int | None = None

    def matches(self, facts: Facts, recipient: str) -> bool:
        size = facts.scan.size
        return size >= self.minimum and (self.maximum is None or size < self.maximum)


@dataclass(frozen=True)
class AllOf:
    conditions: tuple[Condition, ...]

    @property
    def per_recipient(self) -> bool:
        return any(c.per_recipient for c in self.conditions)

    def matches(self, facts: Facts, recipient: str) -> bool:
        return all(c.matches(facts, recipient) for c in self.conditions)

    def evidence(self, facts: Facts, recipient: str) -> list[Finding]:
        return [f for c in self.conditions for f in c.evidence(facts, recipient)]


@dataclass(frozen=True)
class AnyOf:
    conditions: tuple[Condition, ...]

    @property
    def per_recipient(self) -> bool:
        return any(c.per_recipient for c in self.conditions)

    def matches(self, facts: Facts, recipient: str) -> bool:
        return any(c.matches(facts, recipient) for c in self.conditions)

    def evidence(self, facts: Facts, recipient: str) -> list[Finding]:
        return [
            f for c in self.conditions if c.matches(facts, recipient) for f in c.evidence(facts, recipient)
        ]


@dataclass(frozen=True)
class Not:
    condition: Condition

    @property
    def per_recipient(self) -> bool:
        return self.condition.per_recipient

    def matches(self, facts: Facts, recipient: str) -> bool:
        return not self.condition.matches(facts, recipient)

    def evidence(self, facts: Facts, recipient: str) -> list[Finding]:
        return []


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
    problems: list[tuple[Mark, str]] = []
    parsed: list[Condition] = []
    for item in raw:
        try:
            parsed.append(parse_condition(item, getattr(item, "mark", raw.mark), check))
        except PolicyError as exc:
            problems.extend(exc.problems)
    if problems:
        raise PolicyError(problems)
    return tuple(parsed)


def _parse_findings(raw: Any, mark: Mark, check: Check) -> Condition:
    fields = Fields(raw, mark, "findings", {"entities", "min_score", "min_count", "per_location", "location"})
    entities = fields.strings("entities", required=True)
    for entity in entities:
        if entity not in check.known_entities:
            fields.problem("entities", f"unknown entity type '{entity}'")
    condition = FindingsCondition(
        frozenset(entities),
        min_score=fields.number("min_score", 0.5, 0.0, 1.0),
        min_count=fields.whole("min_count", 1, low=1),
        per_location=fields.boolean("per_location", False),
        location=fields.strings("location"),
    )
    fields.done()
    return condition


def _parse_level(fields: Fields, key: str) -> int | None:
    if not fields.has(key):
        return None
    value = fields.raw[key]
    rank = level_rank(value) if isinstance(value, str) else None
    if rank is None:
        fields.problem(key, f"unknown marking level {value!r} (known: {', '.join(LEVELS)})")
    return rank


def _parse_marking(raw: Any, mark: Mark, check: Check) -> Condition:
    fields = Fields(raw, mark, "marking", {"at_least", "below", "caveats"})
    at_least = _parse_level(fields, "at_least")
    below = _parse_level(fields, "below")
    caveats = frozenset(c.strip().upper() for c in fields.strings("caveats"))
    if fields.ok and at_least is None and below is None and not caveats:
        fields.problems.append((fields.raw.mark, "marking needs 'at_least', 'below' or 'caveats'"))
    fields.done()
    return MarkingCondition(at_least, below, caveats)


def _parse_recipient(raw: Any, mark: Mark, check: Check) -> Condition:
    known = ", ".join(RECIPIENT_KINDS)
    if isinstance(raw, str | MarkedList):
        listed = [raw] if isinstance(raw, str) else list(raw)
        bad = [k for k in listed if k not in RECIPIENT_KINDS]
        if bad or not listed:
            raise PolicyError([(mark, f"'recipient' must be one or more of {known}, got {bad or listed}")])
        return RecipientCondition(kinds=tuple(listed))
    fields = Fields(raw, mark, "recipient", {"kind", "domain", "address"})
    kinds = fields.strings("kind")
    for kind in kinds:
        if kind not in RECIPIENT_KINDS:
            fields.problem("kind", f"unknown recipient kind '{kind}' (known: {known})")
    domains = tuple(d.lower() for d in fields.strings("domain"))
    addresses = tuple(a.lower() for a in fields.strings("address"))
    if fields.ok and not (kinds or domains or addresses):
        fields.problems.append((fields.raw.mark, "recipient needs 'kind', 'domain' or 'address'"))
    fields.done()
    return RecipientCondition(kinds, domains, addresses)


def _parse_exposed(raw: Any, mark: Mark, check: Check) -> Condition:
    fields = Fields(raw, mark, "exposed_recipients", {"min", "external_only"})
    condition = ExposedRecipients(fields.whole("min", 10, low=1), fields.boolean("external_only", True))
    if not fields.has("min"):
        fields.problems.append((fields.raw.mark, "exposed_recipients needs 'min'"))
    fields.done()
    return condition


def _parse_sender(raw: Any, mark: Mark, check: Check) -> Condition:
    fields = Fields(raw, mark, "sender", {"address", "domain", "group"})
    groups = fields.strings("group")
    if check.known_groups is not None:
        for group in groups:
            if group not in check.known_groups:
                known = ", ".join(sorted(check.known_groups)) or "none"
                fields.problem("group", f"unknown sender group '{group}' (directory has: {known})")
    condition = SenderCondition(
        tuple(a.lower() for a in fields.strings("address")),
        tuple(d.lower() for d in fields.strings("domain")),
        frozenset(groups),
    )
    if fields.ok and not (condition.addresses or condition.domains or condition.groups):
        fields.problems.append((fields.raw.mark, "sender needs 'address', 'domain' or 'group'"))
    fields.done()
    return condition


def _parse_attachments(raw: Any, mark: Mark, check: Check) -> Condition:
    allowed = {"real_type", "name", "min_size", "min_count", "total_size"}
    fields = Fields(raw, mark, "attachments", allowed)
    condition = AttachmentsCondition(
        real_types=tuple(t.lower() for t in fields.strings("real_type")),
        names=tuple(n.lower() for n in fields.strings("name")),
        min_size=fields.size("min_size") or 0,
        min_count=fields.whole("min_count", 1, low=1),
        total_size=fields.size("total_size") or 0,
    )
    fields.done()
    return condition


def _compile(fields: Fields, key: str) -> regex.Pattern[str] | None:
    text = fields.text(key, required=True)
    if not text:
        return None
    if len(text) > MAX_PATTERN:
        fields.problem(key, f"regular expression longer than {MAX_PATTERN} characters")
        return None
    try:
        return regex.compile(text, regex.IGNORECASE)
    except regex.error as exc:
        fields.problem(key, f"invalid regular expression: {exc}")
        return None


def _parse_header(raw: Any, mark: Mark, check: Check) -> Condition:
    fields = Fields(raw, mark, "header", {"name", "matches"})
    name = fields.text("name", required=True)
    pattern = _compile(fields, "matches")
    fields.done()
    assert pattern is not None
    return HeaderCondition(name, pattern)


def _parse_subject(raw: Any, mark: Mark, check: Check) -> Condition:
    fields = Fields(raw, mark, "subject", {"matches"})
    pattern = _compile(fields, "matches")
    fields.done()
    assert pattern is not None
    return HeaderCondition("subject", pattern)


def _parse_size(raw: Any, mark: Mark, check: Check) -> Condition:
    fields = Fields(raw, mark, "size", {"min", "max"})
    minimum, maximum = fields.size("min"), fields.size("max")
    if fields.ok and minimum is None and maximum is None:
        fields.problems.append((fields.raw.mark, "size needs 'min' or 'max'"))
    fields.done()
    return SizeCondition(minimum or 0, maximum)


def _parse_not(raw: Any, mark: Mark, check: Check) -> Condition:
    return Not(parse_condition(raw, getattr(raw, "mark", mark), check))


PARSERS: dict[str, Parser] = {
    "findings": _parse_findings,
    "marking": _parse_marking,
    "recipient": _parse_recipient,
    "exposed_recipients": _parse_exposed,
    "sender": _parse_sender,
    "attachments": _parse_attachments,
    "header": _parse_header,
    "subject": _parse_subject,
    "size": _parse_size,
    "all": lambda raw, mark, check: AllOf(_parse_list(raw, mark, check)),
    "any": lambda raw, mark, check: AnyOf(_parse_list(raw, mark, check)),
    "not": _parse_not,
}
