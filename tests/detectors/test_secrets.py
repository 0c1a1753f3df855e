"""Credentials and secrets.

Token values are generated at test time from a seeded RNG rather than written out,
so the test file itself never looks like a leaked credential to a scanner.
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
import time

import pytest

from detectors.config import DetectorConfig
from detectors.engine import Detector, build_analyzer
from detectors.secrets import RULES, find_secrets, shannon_entropy
from gateway.model import Finding, Segment

RNG = random.Random(20240611)
ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"


def rand(n: int, alphabet: str = ALNUM) -> str:
    return "".join(RNG.choice(alphabet) for _ in range(n))


def b64url(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def guid() -> str:
    h = "0123456789abcdef"
    return f"{rand(8, h)}-{rand(4, h)}-{rand(4, h)}-{rand(4, h)}-{rand(12, h)}"


JWT = f"{b64url({'alg': 'HS256', 'typ': 'JWT'})}.{b64url({'sub': '1234567890', 'name': 'Jane'})}.{rand(43)}"
PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    + "\n".join(rand(64, B64) for _ in range(6))
    + "\n-----END RSA PRIVATE KEY-----"
)
AWS_SECRET = rand(40, B64)

POSITIVES = [
    ("aws_access_key", f"The key is AKIA{rand(16, string.ascii_uppercase + '234567')} for prod", "AKIA"),
    ("aws_secret_key", f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET),
    ("private_key", f"Here you go:\n{PRIVATE_KEY}\nthanks", "-----BEGIN RSA PRIVATE KEY-----"),
    ("private_key", json.dumps({"type": "x", "private_key": PRIVATE_KEY}), "-----BEGIN"),
    ("github_token", f"use ghp_{rand(36)} to push", "ghp_"),
    ("github_token", f"token github_pat_{rand(82, ALNUM + '_')}", "github_pat_"),
    ("gitlab_token", f"glpat-{rand(20)}", "glpat-"),
    ("slack_token", f"xoxb-{rand(12, string.digits)}-{rand(12, string.digits)}-{rand(24)}", "xoxb-"),
    (
        "slack_webhook",
        f"https://hooks.slack.com/services/T{rand(8)}/B{rand(8)}/{rand(24)}",
        "hooks.slack.com",
    ),
    (
        "teams_webhook",
        f"https://contoso.webhook.office.com/webhookb2/{guid()}@{guid()}/IncomingWebhook/"
        f"{rand(32, '0123456789abcdef')}/{guid()}",
        "webhook.office.com",
    ),
    ("azure_client_secret", f"client secret: {rand(3)}8Q~{rand(34)}", "Q~"),
    (
        "azure_storage_key",
        f"DefaultEndpointsProtocol=https;AccountName=x;AccountKey={rand(86, B64)}==",
        "AccountKey",
    ),
    ("gcp_api_key", f"key=AIza{rand(35, ALNUM + '_-')} ", "AIza"),
    ("jwt", f"Authorisation token for the test: {JWT}", "eyJ"),
    ("connection_string", f"postgres://admin:{rand(12)}@db.internal:5432/hr", "postgres://"),
    ("connection_string", f"Server=tcp:db.x.net;Database=hr;User ID=sa;Password={rand(10)}!;", "Password="),
    ("password_assignment", "Your temporary password: Xk9mQ2vL7pRt", "Xk9mQ2vL7pRt"),
    ("password_assignment", "password = hunter2hunter2", "hunter2hunter2"),
    ("password_assignment", "The password for the portal is Winter2024!", "Winter2024!"),
    ("api_key_assignment", f"api_key: {rand(32)}", "api_key"),
    ("auth_header", f"Authorization: Bearer {rand(40)}", "Bearer"),
]


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(build_analyzer(DetectorConfig()))


def secrets_in(detector: Detector, text: str) -> list[Finding]:
    return [f for f in detector.analyze([Segment("body", text)]) if f.entity_type == "SECRET"]


@pytest.mark.parametrize(("kind", "text", "_marker"), POSITIVES, ids=[p[0] for p in POSITIVES])
def test_unit_kinds(kind: str, text: str, _marker: str) -> None:
    assert [h.kind for h in find_secrets(text)] == [kind]


@pytest.mark.parametrize(("kind", "text", "marker"), POSITIVES, ids=[p[0] for p in POSITIVES])
def test_through_engine_masks_the_secret(detector: Detector, kind: str, text: str, marker: str) -> None:
    [finding] = secrets_in(detector, text)
    assert finding.attributes == {"kind": kind}
    assert finding.score >= 0.7
    secret = text[finding.start : finding.end]
    # The excerpt shows at most 3 letters or digits of the value, never the value.
    assert sum(ch.isalnum() for ch in finding.excerpt) <= 3
    assert secret not in finding.excerpt


def test_password_span_is_the_value_only() -> None:
    text = "Your temporary password: Xk9mQ2vL7pRt"
    [hit] = find_secrets(text)
    assert text[hit.start : hit.end] == "Xk9mQ2vL7pRt"


@pytest.mark.parametrize(
    "text",
    [
        "Password: see attached",
        "passcode - will be sent separately",
        "PIN: 482913",
        "Password reset instructions: Please click the link below.",
        "Your password was changed on 12/03/2024.",
        "password: ********",
        "Password=<your password>",
        "postgres://user:password@localhost/db",
        "AKIAIOSFODNN7EXAMPLE",  # AWS documentation key, allowlisted like gitleaks
        "The secret to success: persistence. A token of appreciation is attached.",
        'I have to pass "pci=bios,biosirq" to the kernel.',
        "-----BEGIN RSA PRIVATE KEY----- is the header line you will see.",
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n" + "A" * 200 + "\n-----END PGP PUBLIC KEY BLOCK-----",
        "eyJhbGciOiJIUzI1NiJ9notajwtatall.eyJzdWIiOiIxMjM0NTY3ODkwIn0",  # no signature part
        f"ey{rand(30)}.ey{rand(30)}.{rand(20)}",  # shaped like a JWT, header is not JSON
        "Cheers,\nJane\nMobile 0412 345 678",
    ],
)
def test_not_secrets(text: str) -> None:
    assert find_secrets(text) == []


def test_provider_rule_wins_over_keyword_rule() -> None:
    text = f"token: ghp_{rand(36)}"
    assert [h.kind for h in find_secrets(text)] == ["github_token"]


def test_entropy() -> None:
    assert shannon_entropy("") == 0.0
    assert shannon_entropy("aaaa") == 0.0
    assert shannon_entropy("abcd") == pytest.approx(2.0)
    assert shannon_entropy("Xk9mQ2vL7pRt") > 3.5


ADVERSARIAL = [
    "password: " * 20_000,
    "password " + "x " * 100_000,
    "a" * 300_000,
    "AKIA" * 60_000,
    "eyJ" + "a" * 200_000 + ".",
    ("eyJ" + "a" * 20 + ".") * 10_000,
    ("x://a:" + "b" * 120) * 2_000,
    "Server=a;" * 30_000 + "Password",
    "-----BEGIN PRIVATE KEY-----" * 8_000,
    "api_key=" + "a" * 200_000,
    "sv=2020-01-01&" * 20_000,
    "glpat-" + "a" * 200_000,
    "token" + " " * 200_000 + "=",
    ("aws" + "_key" * 10) * 5_000,
    "https://x.webhook.office.com/webhookb2/" + "a" * 200_000,
]


@pytest.mark.parametrize("text", ADVERSARIAL, ids=[t[:12] for t in ADVERSARIAL])
def test_adversarial_input_is_fast(text: str) -> None:
    start = time.perf_counter()
    find_secrets(text)
    assert time.perf_counter() - start < 1.0


def test_every_rule_has_keywords_and_bounded_quantifiers() -> None:
    for rule in RULES:
        assert rule.keywords, rule.kind
        assert all(k == k.lower() for k in rule.keywords), rule.kind
        # Unbounded repetition (*, +, {n,}) outside character classes is what makes a
        # backtracking engine slow on hostile text.
        source = re.sub(r"\\.", "", rule.pattern.pattern)  # escaped characters
        source = re.sub(r"\[[^\]]*\]", "", source)  # character classes
        assert not re.search(r"[*+]|\{\d+,\}", source), rule.kind
