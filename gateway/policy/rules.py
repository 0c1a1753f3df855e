"""A policy: named rules, each a condition and an action; and how a decision is reached.

Every rule is evaluated for every recipient.  The most severe action wins
(reject > hold > warn > redact > notify > pass), per recipient, so one message
can pass to internal recipients while it is held for external ones.  A rule in
``monitor`` mode (or a whole policy in monitor mode) is recorded but not enforced.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.model import Action, Decision, Envelope, RuleHit, ScanResult
from gateway.policy.conditions import Check, Condition, Facts, parse_condition
from gateway.policy.loader import Mark, MarkedDict, MarkedList, PolicyError, load_marked

RULE_KEYS = {"name", "description", "guidance", "when", "action", "message", "mode", "stop"}
POLICY_KEYS = {"version", "mode", "rules", "defaults"}
MODES = ("enforce", "monitor")


@dataclass(frozen=True)
class Rule:
    name: str
    condition: Condition
    action: Action
    description: str = ""
    guidance: str = ""
    message: str = ""
    monitor: bool = False
    stop: bool = False

    def hit(self) -> RuleHit:
        return RuleHit(self.name, self.action, self.description, self.guidance, self.message, self.monitor)


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...]
    source: str = ""
    reject_message: str = "Message refused by data-loss-prevention policy"


def load_policy(path: Path, known_entities: frozenset[str]) -> Policy:
    """Load and validate a policy file; raise PolicyError listing every problem found."""
    raw = load_marked(path)
    top = Mark(str(path), 1, 1)
    if not isinstance(raw, MarkedDict):
        raise PolicyError([(top, "a policy must be a mapping with 'rules'")])
    known = ", ".join(sorted(POLICY_KEYS))
    problems = [(raw.mark_of(k), f"unknown key '{k}' (known: {known})") for k in raw if k not in POLICY_KEYS]
    mode = raw.get("mode", "enforce")
    if mode not in MODES:
        problems.append((raw.mark_of("mode"), "'mode' must be 'enforce' or 'monitor'"))
    defaults = raw.get("defaults", {})
    reject_message = defaults.get("reject_message", Policy.reject_message) if isinstance(defaults, dict) else ""
    rules_raw = raw.get("rules")
    if not isinstance(rules_raw, MarkedList):
        problems.append((raw.mark_of("rules"), "'rules' must be a list of rules"))
        rules_raw = MarkedList()
    rules: list[Rule] = []
    names: set[str] = set()
    check = Check(known_entities)
    for item in rules_raw:
        try:
            rule = _parse_rule(item, check, policy_monitor=mode == "monitor")
        except PolicyError as exc:
            problems.extend(exc.problems)
            continue
        if rule.name in names:
            problems.append((item.mark_of("name"), f"duplicate rule name '{rule.name}'"))
        names.add(rule.name)
        rules.append(rule)
    if problems:
        raise PolicyError(problems)
    return Policy(tuple(rules), str(path), str(reject_message))


def _parse_rule(item: Any, check: Check, policy_monitor: bool) -> Rule:
    if not isinstance(item, MarkedDict):
        raise PolicyError([(getattr(item, "mark", Mark("?", 0, 0)), "each rule must be a mapping")])
    problems = [(item.mark_of(k), f"unknown key '{k}' in rule") for k in item if k not in RULE_KEYS]
    name = item.get("name")
    if not isinstance(name, str) or not name:
        problems.append((item.mark, "rule needs a 'name'"))
        name = "?"
    action_name = item.get("action")
    try:
        action = Action.parse(str(action_name))
    except KeyError:
        choices = ", ".join(a.label for a in Action)
        problems.append((item.mark_of("action"), f"rule '{name}': 'action' must be one of {choices}"))
        action = Action.PASS
    mode = item.get("mode", "enforce")
    if mode not in MODES:
        problems.append((item.mark_of("mode"), f"rule '{name}': 'mode' must be 'enforce' or 'monitor'"))
    for key in ("description", "guidance", "message"):
        if key in item and not isinstance(item[key], str):
            problems.append((item.mark_of(key), f"rule '{name}': '{key}' must be text"))
    if "stop" in item and not isinstance(item["stop"], bool):
        problems.append((item.mark_of("stop"), f"rule '{name}': 'stop' must be true or false"))
    condition: Condition | None = None
    if "when" not in item:
        problems.append((item.mark, f"rule '{name}' needs a 'when' condition"))
    else:
        try:
            condition = parse_condition(item["when"], item.mark_of("when"), check)
        except PolicyError as exc:
            problems.extend(exc.problems)
    if problems or condition is None:
        raise PolicyError(problems)
    return Rule(
        name=name,
        condition=condition,
        action=action,
        description=str(item.get("description", "")),
        guidance=str(item.get("guidance", "")),
        message=str(item.get("message", "")),
        monitor=policy_monitor or mode == "monitor",
        stop=bool(item.get("stop", False)),
    )


def decide(policy: Policy, scan: ScanResult, envelope: Envelope, internal_domains: tuple[str, ...]) -> Decision:
    """Evaluate every rule for every recipient; the most severe enforced action wins."""
    facts = Facts(scan, envelope, internal_domains)
    per_recipient: dict[str, Action] = {}
    hits: dict[str, RuleHit] = {}
    reject_message = ""
    for recipient in envelope.recipients:
        action = Action.PASS
        for rule in policy.rules:
            if not rule.condition.matches(facts, recipient):
                continue
            hits.setdefault(rule.name, rule.hit())
            if rule.monitor:
                continue
            if rule.action > action:
                action = rule.action
                if rule.action is Action.REJECT:
                    reject_message = rule.message or policy.reject_message
            if rule.stop:
                break
        per_recipient[recipient] = action
    return Decision(per_recipient, list(hits.values()), reject_message)
