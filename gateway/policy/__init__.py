"""The decide stage: YAML policy rules over findings, recipients and the message."""

from gateway.policy.facts import Facts, Organisation, SeenDomains
from gateway.policy.loader import Mark, PolicyError
from gateway.policy.rules import Policy, Rule, decide, load_policy

__all__ = [
    "Facts",
    "Mark",
    "Organisation",
    "Policy",
    "PolicyError",
    "Rule",
    "SeenDomains",
    "decide",
    "load_policy",
]
