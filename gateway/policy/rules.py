"""A policy: named rules, each a condition, an action and modifiers; and how a decision is reached.

Every rule is evaluated for every recipient.  The most severe action wins
(reject > hold > warn > redact > notify > pass), per recipient, so one message
can pass to internal recipients while it is held for external ones.  An enforced
rule with ``stop: true`` ends evaluation for that recipient.  A rule in
``monitor`` mode (or a whole policy in monitor mode) is recorded but not
enforced; the decision also says what would have happened had it been.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.model import Action, Decision, Envelope, Finding, Redaction, RuleHit, ScanResult
from gateway.policy.conditions import (
    AllOf,
    AnyOf,
    Check,
    Condition,
    FindingsCondition,
    Not,
    parse_condition,
)
from gateway.policy.facts import Facts, Organisation
from gateway.policy.fields import Fields
from gateway.policy.loader import Mark, MarkedDict, MarkedList, PolicyError, load_marked

RULE_KEYS = {
    "name",
    "description",
    "guidance",
    "when",
    "action",
    "message",
    "mode",
    "stop",
    "add_header",
    "subject_prefix",
    "copy_to",
    "notify_reviewers",
    "redact",
}
POLICY_KEYS = {"version", "mode", "rules", "defaults"}
DEFAULTS_KEYS = {"reject_message"}
MODES = ("enforce", "monitor")
REDACT_OPERATORS = ("mask", "replace", "hash")
DELIVERED_NOW = (Action.PASS, Action.NOTIFY, Action.REDACT)
REVIEWERS = "reviewers"  # notify_reviewers: true → the default reviewer group


@dataclass(frozen=True)
class Rule:
    """One rule of a policy, as loaded and validated."""

    name: str
    condition: Condition
    action: Action
    description: str = ""
    guidance: str = ""
    message: str = ""
    monitor: bool = False
    stop: bool = False
    add_headers: tuple[tuple[str, str], ...] = ()
    subject_prefix: str = ""
    copy_to: tuple[str, ...] = ()
    notify_reviewers: tuple[str, ...] = ()
    redaction: Redaction | None = None

    def hit(self, recipients: tuple[str, ...] = (), findings: tuple[Finding, ...] = ()) -> RuleHit:
        return RuleHit(
            self.name,
            self.action,
            self.description,
            self.guidance,
            self.message,
            self.monitor,
            recipients,
            findings,
        )


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...]
    source: str = ""
    reject_message: str = "Message refused by data-loss-prevention policy"

    @property
    def entities(self) -> frozenset[str]:
        """Every entity type any rule looks at, absent ones (under ``not``) included:
        what the detectors must be able to find (e.g. whether NER is needed)."""
        return frozenset(e for rule in self.rules for e in _referenced(rule.condition))


def _referenced(condition: Condition) -> set[str]:
    if isinstance(condition, FindingsCondition):
        return set(condition.entities)
    if isinstance(condition, AllOf | AnyOf):
        return {e for c in condition.conditions for e in _referenced(c)}
    if isinstance(condition, Not):
        return _referenced(condition.condition)
    return set()


def load_policy(
    path: Path, known_entities: frozenset[str], known_groups: frozenset[str] | None = None
) -> Policy:
    """Load and validate a policy file; raise PolicyError listing every problem found.

    ``known_groups`` are the sender groups of the directory; None skips that check.
    """
    raw = load_marked(path)
    top = Mark(str(path), 1, 1)
    if not isinstance(raw, MarkedDict):
        raise PolicyError([(top, "a policy must be a mapping with 'rules'")])
    known = ", ".join(sorted(POLICY_KEYS))
    problems = [(raw.mark_of(k), f"unknown key '{k}' (known: {known})") for k in raw if k not in POLICY_KEYS]
    if "version" in raw and raw["version"] != 1:
        problems.append((raw.mark_of("version"), "'version' must be 1"))
    mode = raw.get("mode", "enforce")
    if mode not in MODES:
        problems.append((raw.mark_of("mode"), "'mode' must be 'enforce' or 'monitor'"))
    defaults = Fields(raw.get("defaults", MarkedDict()), raw.mark_of("defaults"), "defaults", DEFAULTS_KEYS)
    reject_message = defaults.text("reject_message", Policy.reject_message)
    problems.extend(defaults.problems)
    rules_raw = raw.get("rules")
    if not isinstance(rules_raw, MarkedList):
        problems.append((raw.mark_of("rules"), "'rules' must be a list of rules"))
        rules_raw = MarkedList()
    rules: list[Rule] = []
    names: set[str] = set()
    check = Check(known_entities, known_groups)
    for item in rules_raw:
        try:
            rule = _parse_rule(item, check, policy_monitor=mode == "monitor", where=rules_raw.mark)
        except PolicyError as exc:
            problems.extend(exc.problems)
            continue
        if rule.name in names:
            problems.append((item.mark_of("name"), f"duplicate rule name '{rule.name}'"))
        names.add(rule.name)
        rules.append(rule)
    if problems:
        raise PolicyError(sorted(problems, key=lambda p: (p[0].line, p[0].column)))
    return Policy(tuple(rules), str(path), reject_message)


def _parse_rule(item: Any, check: Check, policy_monitor: bool, where: Mark) -> Rule:
    fields = Fields(item, getattr(item, "mark", where), "rule", RULE_KEYS)
    if not isinstance(item, MarkedDict):
        fields.done()  # not a mapping: nothing more to read
    name = fields.text("name", "?", required=True)
    fields.what = f"rule '{name}'"
    action_name = item.get("action") if isinstance(item, MarkedDict) else None
    try:
        action = Action.parse(str(action_name))
    except KeyError:
        choices = ", ".join(a.label for a in Action)
        fields.problem("action", f"rule '{name}': 'action' must be one of {choices}")
        action = Action.PASS
    mode = fields.text("mode", "enforce")
    if mode not in MODES:
        fields.problem("mode", f"rule '{name}': 'mode' must be 'enforce' or 'monitor'")
    condition: Condition | None = None
    if "when" not in fields.raw:
        fields.problems.append((fields.raw.mark, f"rule '{name}' needs a 'when' condition"))
    else:
        try:
            condition = parse_condition(fields.raw["when"], fields.mark("when"), check)
        except PolicyError as exc:
            fields.problems.extend(exc.problems)
    redaction = _parse_redaction(fields, condition, check) if action is Action.REDACT else None
    if "redact" in fields.raw and action is not Action.REDACT:
        fields.problem("redact", f"rule '{name}': 'redact' options need 'action: redact'")
    rule = Rule(
        name=name,
        condition=condition or AllOf(()),
        action=action,
        description=fields.text("description"),
        guidance=fields.text("guidance"),
        message=fields.text("message"),
        monitor=policy_monitor or mode == "monitor",
        stop=fields.boolean("stop", False),
        add_headers=_parse_headers(fields),
        subject_prefix=fields.text("subject_prefix"),
        copy_to=_parse_addresses(fields, "copy_to"),
        notify_reviewers=_parse_reviewers(fields),
        redaction=redaction,
    )
    fields.done()
    return rule


def _parse_headers(fields: Fields) -> tuple[tuple[str, str], ...]:
    raw = fields.raw.get("add_header")
    if raw is None:
        return ()
    if not isinstance(raw, dict) or not raw:
        fields.problem("add_header", "'add_header' must be a mapping of header name to value")
        return ()
    headers = []
    for name, value in raw.items():
        if (
            not _is_header_name(name)
            or not isinstance(value, str | int)
            or "\n" in str(value)
            or "\r" in str(value)
        ):
            fields.problem(
                "add_header", f"'add_header': {name!r} must be a header name with a one-line value"
            )
            continue
        headers.append((name, str(value)))
    return tuple(headers)


def _is_header_name(name: str) -> bool:
    return bool(name) and all(33 <= ord(c) <= 126 and c != ":" for c in name)


def _parse_addresses(fields: Fields, key: str) -> tuple[str, ...]:
    addresses = fields.strings(key)
    for address in addresses:
        if address.count("@") != 1 or any(c.isspace() for c in address):
            fields.problem(key, f"'{key}': {address!r} is not an e-mail address")
    return addresses


def _parse_reviewers(fields: Fields) -> tuple[str, ...]:
    raw = fields.raw.get("notify_reviewers")
    if raw is None or raw is False:
        return ()
    if raw is True:
        return (REVIEWERS,)
    return _parse_addresses(fields, "notify_reviewers")


def _parse_redaction(fields: Fields, condition: Condition | None, check: Check) -> Redaction | None:
    raw = fields.raw.get("redact", MarkedDict())
    if not isinstance(raw, MarkedDict):
        fields.problem("redact", "'redact' must be a mapping such as {operator: mask}")
        return None
    if not hasattr(raw, "mark"):
        raw.mark, raw.key_marks = fields.raw.mark, {}
    allowed = {"entities", "operator", "masking_char", "chars_to_mask", "from_end", "new_value", "hash_type"}
    spec = Fields(raw, raw.mark, "redact", allowed)
    entities = spec.strings("entities") or _entities_in(condition)
    for entity in entities:
        if entity not in check.known_entities:
            spec.problem("entities", f"unknown entity type '{entity}'")
    if not entities and condition is not None:
        spec.problems.append(
            (fields.raw.mark, "a redact rule needs 'findings' in 'when' or 'redact: {entities}'")
        )
    operator = spec.text("operator", "mask")
    params: dict[str, Any] = {}
    if operator == "mask":
        char = spec.text("masking_char", "*")
        if len(char) != 1:
            spec.problem("masking_char", "'masking_char' must be one character")
        params = {
            "masking_char": char or "*",
            "chars_to_mask": spec.whole("chars_to_mask", 100, low=1),
            "from_end": spec.boolean("from_end", False),
        }
    elif operator == "replace":
        if spec.has("new_value"):
            params = {"new_value": spec.text("new_value")}
    elif operator == "hash":
        hash_type = spec.text("hash_type", "sha256")
        if hash_type not in ("sha256", "sha512"):
            spec.problem("hash_type", "'hash_type' must be sha256 or sha512")
        params = {"hash_type": hash_type}
    else:
        spec.problem("operator", f"'operator' must be one of {', '.join(REDACT_OPERATORS)}")
    fields.problems.extend(spec.problems)
    min_score = min((c.min_score for c in _findings_in(condition)), default=0.5)
    return Redaction(tuple(entities), operator, tuple(sorted(params.items())), min_score)


def _findings_in(condition: Condition | None) -> list[FindingsCondition]:
    if isinstance(condition, FindingsCondition):
        return [condition]
    if isinstance(condition, AllOf | AnyOf):
        return [f for c in condition.conditions for f in _findings_in(c)]
    return []  # findings under `not` are what must be absent: nothing to redact


def _entities_in(condition: Condition | None) -> tuple[str, ...]:
    return tuple(sorted({e for f in _findings_in(condition) for e in f.entities}))


@dataclass
class _Fired:
    """A rule that fired, while recipients are being evaluated."""

    rule: Rule
    recipients: list[str] = field(default_factory=list)
    findings: dict[tuple[str, str, int, int], Finding] = field(default_factory=dict)

    def add(self, recipient: str, evidence: list[Finding]) -> None:
        if recipient not in self.recipients:
            self.recipients.append(recipient)
        for f in evidence:
            self.findings.setdefault((f.entity_type, f.location, f.start, f.end), f)


def decide(
    policy: Policy, scan: ScanResult, envelope: Envelope, org: Organisation | tuple[str, ...]
) -> Decision:
    """Evaluate every rule for every recipient; the most severe enforced action wins.

    ``org`` is what the gateway knows about the agency; a tuple of internal
    domains is accepted for callers that know nothing more.
    """
    if isinstance(org, tuple):
        org = Organisation(internal_domains=org)
    facts = Facts(scan, envelope, org)
    fired: dict[str, _Fired] = {}
    per_recipient: dict[str, Action] = {}
    monitor_view: dict[str, Action] = {}
    for recipient in envelope.recipients:
        per_recipient[recipient] = _resolve(policy, facts, recipient, fired, with_monitor=False)
        monitor_view[recipient] = _resolve(policy, facts, recipient, fired, with_monitor=True)
    ordered = [fired[r.name] for r in policy.rules if r.name in fired]
    decision = Decision(
        per_recipient,
        [f.rule.hit(tuple(f.recipients), tuple(f.findings.values())) for f in ordered],
        monitor_per_recipient=monitor_view,
    )
    _apply_modifiers(decision, policy, [f for f in ordered if not f.rule.monitor])
    return decision


def _resolve(
    policy: Policy, facts: Facts, recipient: str, fired: dict[str, _Fired], with_monitor: bool
) -> Action:
    """One recipient's action.  With ``with_monitor`` monitor rules count as enforced, and only
    they are recorded (the enforced ones were recorded on the first pass)."""
    action = Action.PASS
    for rule in policy.rules:
        if rule.monitor and not with_monitor:
            continue
        if not rule.condition.matches(facts, recipient):
            continue
        if rule.monitor or not with_monitor:
            fired.setdefault(rule.name, _Fired(rule)).add(
                recipient, rule.condition.evidence(facts, recipient)
            )
        action = max(action, rule.action)
        if rule.stop:
            break
    return action


def _apply_modifiers(decision: Decision, policy: Policy, enforced: list[_Fired]) -> None:
    """Tagging, copies, reviewer notices and redactions from the enforced rules that fired.

    Headers and subject prefixes change the copy that is delivered now, so they
    come only from rules that fired for a recipient who receives it now.
    """
    for fired in enforced:
        rule = fired.rule
        if rule.action is Action.REJECT and not decision.reject_message:
            decision.reject_message = rule.message or policy.reject_message
        if any(decision.per_recipient[r] in DELIVERED_NOW for r in fired.recipients):
            for name, value in rule.add_headers:
                decision.add_headers.setdefault(name, value)
            if rule.subject_prefix and rule.subject_prefix not in decision.subject_prefix:
                decision.subject_prefix = (decision.subject_prefix + " " + rule.subject_prefix).strip()
        decision.copy_to.extend(a for a in rule.copy_to if a not in decision.copy_to)
        decision.notify_reviewers.extend(
            a for a in rule.notify_reviewers if a not in decision.notify_reviewers
        )
        if rule.redaction is not None:
            decision.redactions.append(rule.redaction)
    if not decision.reject_message and decision.action is Action.REJECT:
        decision.reject_message = policy.reject_message
