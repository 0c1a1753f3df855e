"""The pipeline: scan a message (in the worker pool) and decide what to do with it.

Holds the pieces the SMTP side needs for every message: the scanner pool, the
current policy and the store.  The policy can be swapped while running
(hot reload); each message is decided by the policy current when it arrived.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from detectors.registry import all_entities
from gateway.history import SenderHistory, domain_of
from gateway.metrics import Metrics
from gateway.model import Action, Decision, Envelope, Finding, RuleHit, ScanResult
from gateway.policy import Organisation, Policy, PolicyError, decide, load_policy
from gateway.store import Store
from gateway.workers import ScanFailed

log = logging.getLogger("dlp_gateway.messages")


def _unscanned(raw: bytes, envelope: Envelope, reason: str) -> tuple[ScanResult, Decision]:
    """A hold decision for a message that could not be scanned (fail_mode: hold)."""
    finding = Finding("UNSCANNABLE", 1.0, "message", reason, attributes={"reason": reason})
    scan = ScanResult([finding], [], [], "", "", {}, len(raw))
    hit = RuleHit("scan-failed", Action.HOLD, "The message could not be scanned; held for review.")
    return scan, Decision(dict.fromkeys(envelope.recipients, Action.HOLD), [hit])


class Scans(Protocol):
    async def scan(self, raw: bytes) -> ScanResult: ...


class OutcomeLike(Protocol):
    ident: str
    delivered: list[str]
    held: list[str]


@dataclass
class Pipeline:
    scanner: Scans
    policy: Policy
    store: Store
    internal_domains: tuple[str, ...]
    fail_mode: str = "tempfail"
    # Domains, lists and sender directory for the policy; None: internal domains only.
    organisation: Organisation | None = None
    # Who has written to which domain (``recipient: new_domain``); None: never "new".
    history: SenderHistory | None = None
    # Entity types a reloaded policy may name (the agency's own recognisers' included).
    known_entities: frozenset[str] = field(default_factory=all_entities)
    # Counters and histograms of the running gateway; None: not counted (offline use, tests).
    metrics: Metrics | None = None

    async def evaluate(self, raw: bytes, envelope: Envelope) -> tuple[ScanResult, Decision]:
        """Scan off the event loop, then decide with the current policy.

        A scan that fails raises ScanFailed (the client gets 451), unless the
        settings say to hold such messages for review instead.
        """
        try:
            scan = await self.scanner.scan(raw)
        except ScanFailed as exc:
            if self.metrics is not None:
                self.metrics.scan_failed(str(exc))
            if self.fail_mode != "hold":
                raise
            return _unscanned(raw, envelope, str(exc))
        return scan, decide(self.policy, scan, envelope, await self._organisation_for(envelope))

    async def _organisation_for(self, envelope: Envelope) -> Organisation | tuple[str, ...]:
        """The organisation, with this sender's domain history looked up once, off the loop."""
        if self.organisation is None:
            return self.internal_domains
        if self.history is None:
            return self.organisation
        domains = {domain_of(r) for r in envelope.recipients}
        known = await asyncio.to_thread(self.history.known, envelope.sender, domains)
        return replace(self.organisation, seen_domains=lambda _sender, domain: domain in known)

    def reload_policy(self, path: Path) -> bool:
        """Load a new policy; on any error keep the running one and log why."""
        try:
            groups = self.organisation.directory.names if self.organisation else None
            self.policy = load_policy(path, self.known_entities, groups)
        except PolicyError as exc:
            log.error("policy reload refused, keeping the running policy: %s", exc)
            return False
        log.info("policy reloaded from %s (%d rules)", path, len(self.policy.rules))
        return True

    def log_outcome(
        self,
        envelope: Envelope,
        scan: ScanResult,
        decision: Decision,
        outcome: OutcomeLike,
        seconds: float,
        stages: dict[str, float] | None = None,
    ) -> None:
        """One structured line per message: ids, decision, rules, entity counts, time per
        stage; never values.  Counted in the metrics too, with the same stage times."""
        stages = {**(stages or {}), "total": seconds}
        record: dict[str, object] = {
            "id": outcome.ident,
            # The client's own Message-ID: ties a retried (duplicate) delivery to its first try.
            "message_id": scan.message_id,
            "decision": decision.action.label,
            "rules": decision.rule_names,
            "entities": dict(Counter(f.entity_type for f in scan.findings)),
            "recipients": len(envelope.recipients),
            "delivered": len(outcome.delivered),
            "held": len(outcome.held),
            "size": scan.size,
            "detect_ms": round(scan.duration_ms, 1),  # inside the worker; scan_ms adds the queue wait
            **{f"{stage}_ms": round(value * 1000, 1) for stage, value in stages.items()},
            "defects": len(scan.defects),
        }
        log.info("message %s", decision.action.label, extra={"fields": record})
        if self.metrics is not None:
            self.metrics.observe_message(decision.action.label, stages)
