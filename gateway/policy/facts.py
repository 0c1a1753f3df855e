"""What conditions look at: the scan, the envelope, and what the gateway knows about the agency.

``Organisation`` is built once (from settings) and shared by every decision;
``Facts`` is one message's view of it.  Facts caches per-recipient look-ups
(lookalike comparison, directory groups) because every rule asks again.
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass, field
from typing import Protocol

from gateway.directory import Directory
from gateway.domains import DomainLists, LookalikeChecker, domain_of, within
from gateway.model import Envelope, Finding, ScanResult

# PSPF protective-marking levels as the markings detector writes them in the
# ``level`` attribute, lowest first.  Kept here (not imported from the detector)
# so the policy language does not depend on detector internals.
LEVELS = ("UNOFFICIAL", "OFFICIAL", "OFFICIAL:Sensitive", "PROTECTED", "SECRET", "TOP SECRET")
MARKING_ENTITY = "PROTECTIVE_MARKING"


def level_rank(label: str) -> int | None:
    """Position of a level in ``LEVELS``; spelling variants accepted (``OFFICIAL: Sensitive``,
    ``top-secret``); None when it is not a level."""
    key = re.sub(r"\s*:\s*", ":", " ".join(label.replace("-", " ").split())).upper()
    for rank, level in enumerate(LEVELS):
        if key == level.upper():
            return rank
    return None


@dataclass(frozen=True)
class Marking:
    """The effective marking of a message: the highest level found, with every caveat found."""

    rank: int
    caveats: frozenset[str]
    findings: tuple[Finding, ...]

    @property
    def level(self) -> str:
        return LEVELS[self.rank]


def effective_marking(findings: list[Finding], min_score: float = 0.0) -> Marking | None:
    """Highest-level marking anywhere in the message (header, subject, body, attachments)."""
    ranked = []
    for finding in findings:
        if finding.entity_type != MARKING_ENTITY or finding.score < min_score:
            continue
        rank = level_rank(finding.attributes.get("level", ""))
        if rank is not None:
            ranked.append((rank, finding))
    if not ranked:
        return None
    caveats = frozenset(
        c.strip().upper() for _, f in ranked for c in f.attributes.get("caveats", "").split(",") if c.strip()
    )
    top = max(rank for rank, _ in ranked)
    return Marking(top, caveats, tuple(f for rank, f in ranked if rank == top or f.attributes.get("caveats")))


class SeenDomains(Protocol):
    """Whether ``sender`` has written to ``domain`` before (learned from past mail).

    The pipeline supplies an implementation backed by the store; until it does,
    the ``new_domain`` recipient kind never matches.
    """

    def __call__(self, sender: str, domain: str) -> bool: ...


@dataclass(frozen=True)
class Organisation:
    """The agency's domains, partners, shipped domain lists and sender directory."""

    internal_domains: tuple[str, ...] = ()
    partner_domains: tuple[str, ...] = ()
    lists: DomainLists = field(default_factory=DomainLists)
    directory: Directory = field(default_factory=Directory)
    seen_domains: SeenDomains | None = None

    def __post_init__(self) -> None:
        lower = tuple(d.lower().rstrip(".") for d in self.internal_domains)
        object.__setattr__(self, "internal_domains", lower)
        object.__setattr__(
            self, "partner_domains", tuple(d.lower().rstrip(".") for d in self.partner_domains)
        )

    def lookalikes(self) -> LookalikeChecker:
        return LookalikeChecker(self.internal_domains + self.partner_domains, self.internal_domains)


@dataclass
class RecipientProfile:
    """Everything the recipient conditions ask about one address, computed once."""

    domain: str
    internal: bool
    partner: bool
    webmail: bool
    posting: bool
    lookalike: str | None
    new_domain: bool


@dataclass
class Facts:
    """One message as the conditions see it."""

    scan: ScanResult
    envelope: Envelope
    org: Organisation = field(default_factory=Organisation)
    _profiles: dict[str, RecipientProfile] = field(default_factory=dict, repr=False)
    _checker: LookalikeChecker | None = field(default=None, repr=False)
    _marking: tuple[Marking | None] | None = field(default=None, repr=False)
    _sender_groups: frozenset[str] | None = field(default=None, repr=False)

    @property
    def internal_domains(self) -> tuple[str, ...]:
        return self.org.internal_domains

    def is_internal(self, address: str) -> bool:
        return within(domain_of(address), self.org.internal_domains)

    def recipient(self, address: str) -> RecipientProfile:
        """The cached profile of one recipient address."""
        if address not in self._profiles:
            self._profiles[address] = self._profile(address)
        return self._profiles[address]

    def _profile(self, address: str) -> RecipientProfile:
        domain = domain_of(address)
        internal = within(domain, self.org.internal_domains)
        if self._checker is None:
            self._checker = self.org.lookalikes()
        seen = self.org.seen_domains
        return RecipientProfile(
            domain=domain,
            internal=internal,
            partner=within(domain, self.org.partner_domains),
            webmail=self.org.lists.is_webmail(domain),
            posting=self.org.lists.is_posting(domain),
            lookalike=None if internal else self._checker.lookalike_of(domain),
            new_domain=bool(seen is not None and not internal and not seen(self.envelope.sender, domain)),
        )

    def marking(self) -> Marking | None:
        """The message's effective protective marking (computed once)."""
        if self._marking is None:
            self._marking = (effective_marking(self.scan.findings),)
        return self._marking[0]

    def sender_groups(self) -> frozenset[str]:
        if self._sender_groups is None:
            self._sender_groups = self.org.directory.groups_of(self.envelope.sender)
        return self._sender_groups

    def exposed_addresses(self) -> list[str]:
        """Addresses every recipient can see (To and Cc headers), distinct."""
        fields = [self.scan.headers.get(name, "") for name in ("To", "Cc")]
        addresses = [
            addr.lower() for _, addr in email.utils.getaddresses([f for f in fields if f]) if "@" in addr
        ]
        return list(dict.fromkeys(addresses))
