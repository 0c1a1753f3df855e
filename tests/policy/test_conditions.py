"""Each kind of condition, through the YAML that introduces it and a real decide()."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.directory import Directory
from gateway.domains import DomainLists
from gateway.model import Action, Attachment, Envelope, Finding, ScanResult
from gateway.policy import Organisation, decide
from tests.policy.helpers import envelope, finding, one_rule, scan

ORG = Organisation(
    internal_domains=("agency.gov.au",),
    partner_domains=("integrity.tas.gov.au",),
    lists=DomainLists.load(),
    directory=Directory(
        {"hr": ("alice@agency.gov.au", "*@hr.agency.gov.au"), "exec": ("ceo@agency.gov.au",)}
    ),
)


def held(
    tmp_path: Path, when: str, result: ScanResult, env: Envelope | None = None, org: Organisation = ORG
) -> list[str]:
    """The recipients a one-rule hold policy holds."""
    decision = decide(one_rule(tmp_path, when), result, env or envelope("bob@example.com"), org)
    return decision.recipients_with(Action.HOLD)


# --- findings ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "findings", "fires"),
    [
        ("{findings: {entities: [AU_TFN]}}", [finding("AU_TFN")], True),
        ("{findings: {entities: [AU_TFN]}}", [finding("CREDIT_CARD")], False),
        ("{findings: {entities: [AU_TFN], min_score: 0.95}}", [finding("AU_TFN", score=0.9)], False),
        ("{findings: {entities: AU_TFN, min_score: 0.9}}", [finding("AU_TFN", score=0.9)], True),
        ("{findings: {entities: [AU_TFN], min_count: 2}}", [finding("AU_TFN"), finding("AU_TFN")], False),
        (
            "{findings: {entities: [AU_TFN], min_count: 2}}",
            [finding("AU_TFN"), finding("AU_TFN", start=9)],
            True,
        ),
        (
            "{findings: {entities: [AU_TFN, AU_MEDICARE], min_count: 2}}",
            [finding("AU_TFN"), finding("AU_MEDICARE", start=9)],
            True,
        ),
    ],
)
def test_findings_score_and_count(tmp_path: Path, when: str, findings: list[Finding], fires: bool) -> None:
    assert bool(held(tmp_path, when, scan(*findings))) is fires


def test_findings_per_location_needs_the_count_within_one_location(tmp_path: Path) -> None:
    spread = scan(finding("AU_TFN", "body"), finding("AU_TFN", "attachment[1]:a.csv"))
    together = scan(
        finding("AU_TFN", "attachment[1]:a.csv"), finding("AU_TFN", "attachment[1]:a.csv", start=7)
    )
    when = "{findings: {entities: [AU_TFN], min_count: 2, per_location: true}}"
    assert held(tmp_path, when, spread) == []
    assert held(tmp_path, when, together) == ["bob@example.com"]
    assert held(tmp_path, "{findings: {entities: [AU_TFN], min_count: 2}}", spread) == ["bob@example.com"]


def test_findings_location_glob(tmp_path: Path) -> None:
    when = "{findings: {entities: [ENCRYPTED], location: 'attachment*'}}"
    assert held(tmp_path, when, scan(finding("ENCRYPTED", "attachment[2]:x.zip"))) == ["bob@example.com"]
    assert held(tmp_path, when, scan(finding("ENCRYPTED", "body"))) == []


# --- marking -----------------------------------------------------------------


def marking(level: str, caveats: str = "", location: str = "subject") -> Finding:
    attributes = {"level": level, **({"caveats": caveats} if caveats else {})}
    return finding("PROTECTIVE_MARKING", location, 1.0, **attributes)


@pytest.mark.parametrize(
    ("when", "markings", "fires"),
    [
        ("{marking: {at_least: PROTECTED}}", [marking("PROTECTED")], True),
        ("{marking: {at_least: PROTECTED}}", [marking("OFFICIAL:Sensitive")], False),
        ("{marking: {at_least: 'OFFICIAL: Sensitive'}}", [marking("TOP SECRET")], True),
        ("{marking: {at_least: OFFICIAL}}", [], False),
        # The effective marking is the highest anywhere (an attachment outranks the subject).
        (
            "{marking: {at_least: SECRET}}",
            [marking("OFFICIAL"), marking("SECRET", location="attachment[1]:a")],
            True,
        ),
        ("{marking: {below: PROTECTED}}", [marking("OFFICIAL")], True),
        ("{marking: {below: PROTECTED}}", [marking("PROTECTED")], False),
        ("{marking: {below: OFFICIAL}}", [], True),  # unmarked counts as below every level
        ("{marking: {caveats: [CABINET]}}", [marking("PROTECTED", "CABINET")], True),
        ("{marking: {caveats: [cabinet]}}", [marking("PROTECTED", "LEGAL-PRIVILEGE,CABINET")], True),
        ("{marking: {caveats: [CABINET]}}", [marking("PROTECTED", "LEGAL-PRIVILEGE")], False),
        ("{marking: {at_least: SECRET, caveats: [CABINET]}}", [marking("PROTECTED", "CABINET")], False),
    ],
)
def test_marking_levels_and_caveats(tmp_path: Path, when: str, markings: list[Finding], fires: bool) -> None:
    assert bool(held(tmp_path, when, scan(*markings))) is fires


# --- recipients --------------------------------------------------------------

RECIPIENTS = (
    "carol@agency.gov.au",
    "dan@sub.agency.gov.au",
    "bob@example.com",
    "eve@gmail.com",
    "me@yahoo.com.au",
    "post@blogger.com",
    "x@integrity-tas.gov.au",
    "x@lntegrity.tas.gov.au",
    "x@agency-gov.au",
    "x@integrity.tas.gov.au",
    "x@other.nsw.gov.au",
)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("internal", {"carol@agency.gov.au", "dan@sub.agency.gov.au"}),
        ("webmail", {"eve@gmail.com", "me@yahoo.com.au"}),
        ("posting", {"post@blogger.com"}),
        ("partner", {"x@integrity.tas.gov.au"}),
        ("lookalike", {"x@integrity-tas.gov.au", "x@lntegrity.tas.gov.au", "x@agency-gov.au"}),
        ("[webmail, posting]", {"eve@gmail.com", "me@yahoo.com.au", "post@blogger.com"}),
        ("{domain: ['*.gov.au']}", {r for r in RECIPIENTS if r.endswith(".gov.au")}),
        ("{address: ['eve@*']}", {"eve@gmail.com"}),
        (
            "{kind: external, domain: ['*.gov.au']}",
            {"x@integrity-tas.gov.au", "x@lntegrity.tas.gov.au"}
            | {"x@integrity.tas.gov.au", "x@other.nsw.gov.au"},
        ),
    ],
)
def test_recipient_kinds(tmp_path: Path, kind: str, expected: set[str]) -> None:
    assert set(held(tmp_path, f"{{recipient: {kind}}}", scan(), envelope(*RECIPIENTS))) == expected


def test_external_is_everything_not_internal(tmp_path: Path) -> None:
    external = set(held(tmp_path, "{recipient: external}", scan(), envelope(*RECIPIENTS)))
    assert external == set(RECIPIENTS) - {"carol@agency.gov.au", "dan@sub.agency.gov.au"}


def test_homoglyph_domain_in_punycode_is_a_lookalike(tmp_path: Path) -> None:
    # іntegrity.tas.gov.au with a Cyrillic і, as it travels in the envelope.
    rcpt = "x@xn--ntegrity-shh.tas.gov.au"
    assert held(tmp_path, "{recipient: lookalike}", scan(), envelope(rcpt)) == [rcpt]


def test_new_domain_uses_the_injected_history(tmp_path: Path) -> None:
    known = {("alice@agency.gov.au", "example.com")}
    org = Organisation(("agency.gov.au",), seen_domains=lambda sender, domain: (sender, domain) in known)
    env = envelope("bob@example.com", "new@example.org", "carol@agency.gov.au")
    assert held(tmp_path, "{recipient: new_domain}", scan(), env, org) == ["new@example.org"]
    # Without a history nothing is "new": the condition never fires rather than firing on everything.
    assert held(tmp_path, "{recipient: new_domain}", scan(), env, Organisation(("agency.gov.au",))) == []


def test_exposed_recipients_counts_visible_external_addresses(tmp_path: Path) -> None:
    many = ", ".join(f"p{i}@example.com" for i in range(12))
    internal = ", ".join(f"s{i}@agency.gov.au" for i in range(12))
    when = "{exposed_recipients: {min: 10}}"
    assert held(tmp_path, when, scan(headers={"To": many})) == ["bob@example.com"]
    assert held(tmp_path, when, scan(headers={"To": internal})) == []
    assert held(
        tmp_path, "{exposed_recipients: {min: 10, external_only: false}}", scan(headers={"Cc": internal})
    )
    assert held(tmp_path, when, scan(headers={"To": "a@example.com"})) == []


# --- sender ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "sender", "fires"),
    [
        ("{sender: {group: hr}}", "alice@agency.gov.au", True),
        ("{sender: {group: hr}}", "pat@hr.agency.gov.au", True),
        ("{sender: {group: [exec]}}", "alice@agency.gov.au", False),
        ("{sender: {domain: 'agency.gov.au'}}", "alice@agency.gov.au", True),
        ("{sender: {domain: '*.agency.gov.au'}}", "alice@agency.gov.au", False),
        ("{sender: {address: 'ALICE@agency.gov.au'}}", "alice@agency.gov.au", True),
        ("{sender: {group: hr, domain: example.com}}", "alice@agency.gov.au", False),
    ],
)
def test_sender_address_domain_and_group(tmp_path: Path, when: str, sender: str, fires: bool) -> None:
    result = held(tmp_path, when, scan(), envelope("bob@example.com", sender=sender))
    assert bool(result) is fires


# --- attachments, headers, size ----------------------------------------------


def attachment(real_type: str, size: int, name: str = "f.bin") -> Attachment:
    return Attachment(f"attachment[1]:{name}", name, "application/octet-stream", real_type, size, "0" * 64)


@pytest.mark.parametrize(
    ("when", "attachments", "fires"),
    [
        ("{attachments: {real_type: 'application/zip'}}", [attachment("application/zip", 10)], True),
        ("{attachments: {real_type: 'application/*'}}", [attachment("text/plain", 10)], False),
        ("{attachments: {name: '*.xlsx'}}", [attachment("application/zip", 10, "Clients.XLSX")], True),
        ("{attachments: {min_size: 5 MB}}", [attachment("text/csv", 6 * 1024 * 1024)], True),
        ("{attachments: {min_size: 5 MB}}", [attachment("text/csv", 4 * 1024 * 1024)], False),
        ("{attachments: {min_count: 3}}", [attachment("text/csv", 1)] * 2, False),
        ("{attachments: {min_count: 3}}", [attachment("text/csv", 1)] * 3, True),
        ("{attachments: {total_size: '1KB'}}", [attachment("text/csv", 600)] * 2, True),
    ],
)
def test_attachments(tmp_path: Path, when: str, attachments: list[Attachment], fires: bool) -> None:
    assert bool(held(tmp_path, when, scan(attachments=tuple(attachments)))) is fires


def test_subject_and_header_regexes(tmp_path: Path) -> None:
    result = scan(
        subject="FW: Payroll export March", headers={"X-Protective-Marking": "VER=2018.4, SEC=PROTECTED"}
    )
    assert held(tmp_path, r"{subject: {matches: '\bpayroll\b'}}", result)  # case-insensitive
    assert not held(tmp_path, r"{subject: {matches: '^re:'}}", result)
    assert held(tmp_path, "{header: {name: x-protective-marking, matches: 'SEC=PROTECTED'}}", result)
    assert not held(tmp_path, "{header: {name: X-Absent, matches: '.'}}", result)


def test_message_size(tmp_path: Path) -> None:
    assert held(tmp_path, "{size: {min: 10 MB}}", scan(size=11 * 1024 * 1024))
    assert not held(tmp_path, "{size: {min: 10 MB}}", scan(size=1024))
    assert held(tmp_path, "{size: {max: 2KB}}", scan(size=1024))


# --- combinators -------------------------------------------------------------


def test_all_any_not_combine(tmp_path: Path) -> None:
    when = (
        "{all: [{recipient: external},"
        " {any: [{findings: {entities: [AU_TFN]}}, {marking: {at_least: PROTECTED}}]},"
        " {not: {recipient: {domain: ['*.gov.au']}}}]}"
    )
    env = envelope("bob@example.com", "x@other.nsw.gov.au", "carol@agency.gov.au")
    assert held(tmp_path, when, scan(finding("AU_TFN")), env) == ["bob@example.com"]
    assert held(tmp_path, when, scan(marking("SECRET")), env) == ["bob@example.com"]
    assert held(tmp_path, when, scan(marking("OFFICIAL")), env) == []
