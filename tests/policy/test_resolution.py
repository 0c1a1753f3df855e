"""How rules combine: most severe wins per recipient, stop, monitor mode, modifiers, explanations."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.domains import DomainLists
from gateway.model import Action, Finding
from gateway.policy import Organisation, decide
from tests.policy.helpers import envelope, finding, policy, scan

INTERNAL = ("agency.gov.au",)
RCPTS = ("carol@agency.gov.au", "bob@example.com", "eve@gmail.com")

# Rules over: TFN anywhere (warn), TFN to external (hold), anything to webmail (reject).
THREE_RULES = """
rules:
  - name: tfn-anywhere
    when: {findings: {entities: [AU_TFN]}}
    action: %s
    %s
  - name: tfn-external
    when: {all: [{recipient: external}, {findings: {entities: [AU_TFN]}}]}
    action: %s
    %s
  - name: webmail
    when: {recipient: webmail}
    action: %s
    %s
"""


@pytest.mark.parametrize(
    ("actions", "extras", "findings", "expected"),
    [
        # most severe wins, per recipient
        (("warn", "hold", "reject"), ("", "", ""), [finding("AU_TFN")], ("warn", "hold", "reject")),
        (("notify", "redact", "hold"), ("", "", ""), [finding("AU_TFN")], ("notify", "redact", "hold")),
        (("pass", "warn", "notify"), ("", "", ""), [], ("pass", "pass", "notify")),
        # a first rule with stop ends evaluation for the recipients it fired for
        (
            ("notify", "hold", "hold"),
            ("stop: true", "", ""),
            [finding("AU_TFN")],
            ("notify", "notify", "notify"),
        ),
        # stop on a rule that does not fire changes nothing
        (("notify", "hold", "reject"), ("", "stop: true", ""), [], ("pass", "pass", "reject")),
        # a monitor rule is not enforced ...
        (
            ("warn", "hold", "reject"),
            ("", "mode: monitor", ""),
            [finding("AU_TFN")],
            ("warn", "warn", "reject"),
        ),
        # ... and a monitor rule with stop does not stop enforcement
        (
            ("warn", "hold", "reject"),
            ("mode: monitor\n    stop: true", "", ""),
            [finding("AU_TFN")],
            ("pass", "hold", "reject"),
        ),
    ],
)
def test_resolution_table(
    tmp_path: Path,
    actions: tuple[str, ...],
    extras: tuple[str, ...],
    findings: list[Finding],
    expected: tuple[str, ...],
) -> None:
    text = THREE_RULES % tuple(x for pair in zip(actions, extras, strict=True) for x in pair)
    decision = decide(policy(tmp_path, text), scan(*findings), envelope(*RCPTS), _org())
    assert tuple(decision.per_recipient[r].label for r in RCPTS) == expected
    assert decision.action == max(Action.parse(e) for e in expected)


def _org() -> Organisation:
    return Organisation(INTERNAL, lists=DomainLists.load())


def test_webmail_recipient_rejected_means_whole_message_rejected_with_rule_message(tmp_path: Path) -> None:
    text = THREE_RULES % ("warn", "", "hold", "", "reject", "message: No personal mailboxes")
    decision = decide(policy(tmp_path, text), scan(), envelope(*RCPTS), _org())
    assert decision.action is Action.REJECT
    assert decision.reject_message == "No personal mailboxes"
    assert decision.recipients_with(Action.PASS) == ["carol@agency.gov.au", "bob@example.com"]


@pytest.mark.parametrize(
    ("mode_line", "enforced", "would"),
    [("mode: enforce", "hold", "hold"), ("mode: monitor", "pass", "hold")],
)
def test_policy_monitor_mode_records_what_would_happen(
    tmp_path: Path, mode_line: str, enforced: str, would: str
) -> None:
    text = f"""
    {mode_line}
    rules:
      - name: tfn
        when: {{findings: {{entities: [AU_TFN]}}}}
        action: hold
    """
    decision = decide(policy(tmp_path, text), scan(finding("AU_TFN")), envelope("bob@example.com"), INTERNAL)
    assert decision.action.label == enforced
    assert decision.monitor_action.label == would
    assert decision.rule_names == ["tfn"]
    assert decision.hits[0].monitor is (mode_line == "mode: monitor")


def test_hits_explain_with_description_guidance_recipients_and_findings(tmp_path: Path) -> None:
    text = """
    rules:
      - name: tfn-external
        description: A TFN is leaving.
        guidance: Ask first.
        when: {all: [{recipient: external}, {findings: {entities: [AU_TFN]}}]}
        action: hold
    """
    result = scan(finding("AU_TFN"), finding("CREDIT_CARD", start=20))
    decision = decide(policy(tmp_path, text), result, envelope(*RCPTS), INTERNAL)
    (hit,) = decision.hits
    assert (hit.description, hit.guidance) == ("A TFN is leaving.", "Ask first.")
    assert hit.recipients == ("bob@example.com", "eve@gmail.com")
    assert [f.entity_type for f in hit.findings] == ["AU_TFN"]
    data = hit.to_json()
    assert data["findings"][0]["excerpt"] == "•••" and data["recipients"] == list(hit.recipients)


def test_modifiers_come_from_enforced_rules_that_fired(tmp_path: Path) -> None:
    text = """
    rules:
      - name: tag
        when: {findings: {entities: [AU_TFN]}}
        action: notify
        add_header: {X-DLP-Tag: personal-information}
        subject_prefix: "[PRIVACY]"
        copy_to: compliance@agency.gov.au
        notify_reviewers: true
      - name: monitor-tag
        when: {findings: {entities: [AU_TFN]}}
        action: notify
        mode: monitor
        add_header: {X-Monitor: "yes"}
        copy_to: [audit@agency.gov.au]
      - name: not-firing
        when: {findings: {entities: [CREDIT_CARD]}}
        action: notify
        subject_prefix: "[CARD]"
    """
    decision = decide(policy(tmp_path, text), scan(finding("AU_TFN")), envelope("bob@example.com"), INTERNAL)
    assert decision.add_headers == {"X-DLP-Tag": "personal-information"}
    assert decision.subject_prefix == "[PRIVACY]"
    assert decision.copy_to == ["compliance@agency.gov.au"]
    assert decision.notify_reviewers == ["reviewers"]


def test_redact_rule_carries_its_operator_and_entities(tmp_path: Path) -> None:
    text = """
    rules:
      - name: mask-tfn
        when: {findings: {entities: [AU_TFN, AU_MEDICARE], min_score: 0.7}}
        action: redact
        redact: {operator: replace, new_value: "[removed]"}
    """
    decision = decide(policy(tmp_path, text), scan(finding("AU_TFN")), envelope("bob@example.com"), INTERNAL)
    assert decision.action is Action.REDACT
    (redaction,) = decision.redactions
    assert redaction.entities == ("AU_MEDICARE", "AU_TFN")
    assert (redaction.operator, dict(redaction.params), redaction.min_score) == (
        "replace",
        {"new_value": "[removed]"},
        0.7,
    )


def test_tags_only_from_rules_that_fired_for_recipients_receiving_it_now(tmp_path: Path) -> None:
    text = """
    rules:
      - name: held-for-external
        when: {recipient: external}
        action: hold
        subject_prefix: "[HELD]"
        copy_to: compliance@agency.gov.au
      - name: internal-tag
        when: {recipient: internal}
        action: notify
        add_header: {X-Internal: "yes"}
    """
    env = envelope("carol@agency.gov.au", "bob@example.com")
    decision = decide(policy(tmp_path, text), scan(), env, INTERNAL)
    assert decision.subject_prefix == ""  # carol receives it now; the held copy is not tagged
    assert decision.add_headers == {"X-Internal": "yes"}
    assert decision.copy_to == ["compliance@agency.gov.au"]  # copies are kept for held mail too
