"""The decide stage: YAML policy rules over findings, recipients and the message."""

from gateway.policy.loader import Mark, PolicyError
from gateway.policy.rules import Policy, Rule, decide, load_policy

__all__ = ["Mark", "Policy", "PolicyError", "Rule", "decide", "load_policy"]
