"""Simulation before rollout: run a policy over saved messages and tabulate the decisions.

With an older policy to compare against, only the messages whose decision
changes are listed, with both decisions, so a reviewer sees exactly what an
edit would do to real traffic.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TextIO

from gateway.model import Decision, Envelope, ScanResult
from gateway.policy.facts import Organisation
from gateway.policy.rules import Policy, decide

NAME_WIDTH = 60


@dataclass(frozen=True)
class Simulated:
    """One message: its decision under the policy (and under the old one, when comparing)."""

    name: str
    new: Decision | None
    old: Decision | None = None
    error: str = ""

    @property
    def label(self) -> str:
        return self.new.action.label if self.new else "error"

    @property
    def old_label(self) -> str:
        return self.old.action.label if self.old else "error"

    @property
    def changed(self) -> bool:
        if self.new is None or self.old is None:
            return self.error != ""
        return self.new.per_recipient != self.old.per_recipient


def simulate(
    policy: Policy,
    messages: Iterable[tuple[str, bytes]],
    scan: Callable[[bytes], ScanResult],
    envelope_of: Callable[[bytes], Envelope],
    org: Organisation,
    against: Policy | None = None,
) -> Iterator[Simulated]:
    """Scan each message once and decide it with ``policy`` (and ``against``)."""
    for name, raw in messages:
        try:
            result = scan(raw)
        except Exception as exc:  # one unreadable file must not end a simulation run
            yield Simulated(name, None, None, f"{type(exc).__name__}")
            continue
        envelope = envelope_of(raw)
        old = decide(against, result, envelope, org) if against is not None else None
        yield Simulated(name, decide(policy, result, envelope, org), old)


def report(results: Iterable[Simulated], out: TextIO, comparing: bool) -> Counter[str]:
    """Print the table (only changes when comparing) and the totals; return the totals."""
    totals: Counter[str] = Counter()
    monitor: Counter[str] = Counter()
    transitions: Counter[str] = Counter()
    header = f"{'message':{NAME_WIDTH}} {'was':8} {'now':8} rules" if comparing else None
    print(header or f"{'message':{NAME_WIDTH}} {'decision':8} rules", file=out)
    for item in results:
        totals[item.label] += 1
        if item.new is not None:
            monitor[item.new.monitor_action.label] += 1
        rules = ", ".join(_rule_label(h.name, h.monitor) for h in item.new.hits) if item.new else item.error
        name = item.name[:NAME_WIDTH]
        if not comparing:
            print(f"{name:{NAME_WIDTH}} {item.label:8} {rules}", file=out)
        elif item.changed:
            transitions[f"{item.old_label}→{item.label}"] += 1
            print(f"{name:{NAME_WIDTH}} {item.old_label:8} {item.label:8} {rules}", file=out)
    print(f"totals ({sum(totals.values())} messages): {_counts(totals)}", file=out)
    if monitor != totals:
        print(f"with monitor rules enforced: {_counts(monitor)}", file=out)
    if comparing:
        print(f"changed: {sum(transitions.values())} ({_counts(transitions) or 'none'})", file=out)
    return totals


def _rule_label(name: str, monitor: bool) -> str:
    return f"{name} (monitor)" if monitor else name


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(counter.items()))
