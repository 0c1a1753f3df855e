"""Credentials and secrets in message text (``SECRET``, attribute ``kind``).

Provider-specific rules are ported from gitleaks (config at b58d3f1), detect-secrets
and trufflehog as quoted in the reference (Part C1); the e-mail password rule is
the reference's C2 suggestion.  Rules are Python ``re`` rather than RE2, so every
quantifier is bounded and each rule is only run when one of its keywords is in
the text; nothing here can backtrack for long on hostile input.

Where a rule captures a group, the finding's span is the secret alone (not the
``password:`` before it), so the masked excerpt and any redaction cover only it.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from presidio_analyzer import LocalRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from detectors.prefilter import Trigger, Windowed, literals

ENTITY = "SECRET"
ATTRIBUTES_KEY = "attributes"
RECOGNIZER_NAME = "SecretRecognizer"

# A check gets the text and the match and returns the secret's span, or None to reject.
Check = Callable[[str, "re.Match[str]"], tuple[int, int] | None]


@dataclass(frozen=True)
class SecretRule:
    """One kind of secret: a bounded regex, the keywords that gate it, and a check."""

    kind: str
    pattern: re.Pattern[str]
    keywords: tuple[str, ...]  # lower-case; the rule runs only if one occurs in the text
    score: float = 0.95
    group: int = 0  # the capture group that is the secret
    min_entropy: float = 0.0  # Shannon bits per character of the secret
    check: Check | None = None
    generic: bool = False  # keyword rules give way to a provider rule on the same span


@dataclass(frozen=True)
class SecretHit:
    """A secret found in text: span, kind and score."""

    start: int
    end: int
    kind: str
    score: float


def shannon_entropy(value: str) -> float:
    """Bits per character of ``value`` (0 for the empty string)."""
    if not value:
        return 0.0
    counts = Counter(value)
    total = len(value)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


# --- checks -----------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(
    r"^(?:[*x•.#_-]+|<[^>]*>|\{[^}]*\}|\[[^\]]*\]|\$\{?\w*\}?|%s|%\(\w+\)s|null|none|changeme|"
    r"password|passwd|pass|pwd|secret|redacted|hidden|example|your[\w-]*|my[\w-]*|xxx\w*)$",
    re.IGNORECASE,
)
_TRAILING = ".,;:)]}>'\"`"


def _span(match: re.Match[str], group: int) -> tuple[int, int]:
    return match.span(group)


def _not_example(text: str, match: re.Match[str]) -> tuple[int, int] | None:
    """gitleaks allowlists AWS's documentation keys (``…EXAMPLE``)."""
    return None if match.group(1).endswith("EXAMPLE") else match.span(1)


def _b64url_json(part: str) -> dict[str, object] | None:
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _jwt(text: str, match: re.Match[str]) -> tuple[int, int] | None:
    """A JWT only if its header decodes to a JSON object naming an algorithm or type
    (detect-secrets' ``is_formally_valid``): random ``ey…`` strings are dropped."""
    header = _b64url_json(match.group(1).split(".", 1)[0])
    if header is None or not ({"alg", "typ"} & header.keys()):
        return None
    return match.span(1)


def _credential_token(value: str, *, min_length: int, min_entropy: float) -> bool:
    """A token that looks like a credential rather than a word, date, number or placeholder."""
    if len(value) < min_length or _PLACEHOLDER.match(value):
        return False
    if "://" in value or "@" in value or value.isdigit():
        return False
    has_digit_or_symbol = any(not c.isalpha() for c in value)
    has_letter = any(c.isalpha() for c in value)
    return has_digit_or_symbol and has_letter and shannon_entropy(value) >= min_entropy


def _trimmed(match: re.Match[str], group: int) -> tuple[int, int, str]:
    start = match.start(group)
    value = match.group(group).rstrip(_TRAILING)
    return start, start + len(value), value


def _password(text: str, match: re.Match[str]) -> tuple[int, int] | None:
    """Reference C2: ≥ 6 characters, a digit or symbol, entropy ≥ 3.0 bits/char.

    Long tokens may repeat characters (``hunter2hunter2`` is 2.8 bits/char) and still be
    nothing like a word, so from 12 characters on 2.5 bits/char is enough.
    """
    start, end, value = _trimmed(match, 1)
    min_entropy = 2.5 if len(value) >= 12 else 3.0
    ok = _credential_token(value, min_length=6, min_entropy=min_entropy)
    return (start, end) if ok else None


def _api_key(text: str, match: re.Match[str]) -> tuple[int, int] | None:
    """gitleaks generic-api-key: ≥ 10 characters and entropy ≥ 3.5."""
    start, end, value = _trimmed(match, 1)
    ok = _credential_token(value, min_length=12, min_entropy=3.5)
    return (start, end) if ok else None


def _uri_password(text: str, match: re.Match[str]) -> tuple[int, int] | None:
    value = match.group(2)
    return None if _PLACEHOLDER.match(value) or len(value) < 3 else match.span(2)


_CONNECTION_CONTEXT = re.compile(
    r"(?i)(?:server|data source|host|address|addr|user id|uid|database|initial catalog|jdbc:)\s{0,3}[=:]"
)


def _conn_password(text: str, match: re.Match[str]) -> tuple[int, int] | None:
    """``Password=…`` counts as a connection string only next to ``Server=``/``User Id=`` &c."""
    window = text[max(0, match.start() - 300) : match.start()]
    if not _CONNECTION_CONTEXT.search(window):
        return None
    start, _, value = _trimmed(match, 1)
    value = value.strip()
    if len(value) < 3 or _PLACEHOLDER.match(value):
        return None
    return start, start + len(value)


# --- rules ------------------------------------------------------------------------------------

_END = r"(?=[\x60'\"\s;,)<\]}]|\\[nr]|$)"  # gitleaks' token terminator, as a lookahead


_GITLAB_PREFIXES: tuple[str, ...] = ("glpat-", "gldt-", "glft-", "glsoat-", "glrt-", "glptt-", "glimt-")
_GITLAB_PREFIXES += ("glagent-", "gloas-", "glffct-", "glcbt-", "gr1348941")


def _rule(kind: str, regex: str, keywords: tuple[str, ...], **kwargs: object) -> SecretRule:
    return SecretRule(kind, re.compile(regex), keywords, **kwargs)  # type: ignore[arg-type]


RULES: tuple[SecretRule, ...] = (
    _rule(
        "aws_access_key",
        r"\b((?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})\b",
        ("a3t", "akia", "asia", "abia", "acca"),
        group=1,
        min_entropy=3.0,
        check=_not_example,
    ),
    _rule(
        "aws_secret_key",
        r"(?i)aws[\w.-]{0,30}?(?:secret|key)[\w.-]{0,30}?[\"']?[ \t]{0,3}(?:=|:|=>)[ \t]{0,3}[\"']?"
        r"([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])",
        ("aws",),
        group=1,
        min_entropy=4.0,
    ),
    _rule(
        "github_token",
        r"\b((?:ghp|gho|ghu|ghs|ghr)_[0-9a-zA-Z]{36}|github_pat_\w{82})\b",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        group=1,
        min_entropy=3.0,
    ),
    _rule(  # keywords: every GitLab token prefix
        "gitlab_token",
        r"\b((?:glpat|gldt|glft|glsoat|glrt|glptt|glimt|glagent|gloas|glffct|glcbt)-[0-9A-Za-z_-]{20,300}"
        r"(?:\.[0-9a-z]{2}\.?[0-9a-z]{7,9})?|GR1348941[\w-]{20,50})(?![\w-])",
        _GITLAB_PREFIXES,
        group=1,
        min_entropy=3.0,
    ),
    _rule(
        "slack_token",
        r"\b(xox[baprseo]-[0-9A-Za-z-]{10,250}|(?i:xapp)-\d-[A-Z0-9]{1,40}-\d{1,20}-[a-zA-Z0-9]{1,100})",
        ("xox", "xapp-"),
        group=1,
    ),
    _rule(
        "slack_webhook",
        r"(?:https?://)?hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/]{43,56}",
        ("hooks.slack.com",),
    ),
    _rule(
        "teams_webhook",
        r"(?i)https://[a-z0-9-]{1,63}\.webhook\.office\.com/webhookb2/[a-f0-9]{8}-(?:[a-f0-9]{4}-){3}"
        r"[a-f0-9]{12}@[a-f0-9]{8}-(?:[a-f0-9]{4}-){3}[a-f0-9]{12}/IncomingWebhook/[a-z0-9]{32}/"
        r"[a-f0-9]{8}-(?:[a-f0-9]{4}-){3}[a-f0-9]{12}",
        ("webhook.office.com",),
    ),
    _rule(
        "azure_client_secret",
        r"(?:^|[\\'\"\x60\s>=:(,)])([a-zA-Z0-9_~.]{3}\dQ~[a-zA-Z0-9_~.-]{31,34})(?=$|[\\'\"\x60\s<),])",
        ("q~",),
        group=1,
        min_entropy=3.0,
    ),
    _rule(
        "azure_storage_key",
        r"(?i)\bAccountKey\s{0,3}=\s{0,3}([A-Za-z0-9+/]{86}==)",
        ("accountkey",),
        group=1,
    ),
    _rule(
        "azure_sas_token",
        r"(?i)\bsv=[0-9.-]{3,10}&[^\s\"'<>]{0,400}?\bsig=([A-Za-z0-9%+/=_-]{30,120})",
        ("sig=",),
        group=1,
        score=0.85,
    ),
    _rule(
        "gcp_api_key",
        r"\b(AIza[\w-]{35})" + _END,
        ("aiza",),
        group=1,
        min_entropy=4.0,
    ),
    _rule(
        "gcp_service_account",
        r"\"type\"\s{0,5}:\s{0,5}\"service_account\"",
        ("service_account",),
        score=0.7,
    ),
    _rule(
        "jwt",
        r"\b(ey[A-Za-z0-9_-]{15,2000}={0,2}\.ey[A-Za-z0-9_-]{15,8000}={0,2}\.[A-Za-z0-9_-]{10,2000}={0,2})"
        r"(?![A-Za-z0-9_.=-])",
        ("ey",),
        group=1,
        score=0.85,
        min_entropy=3.0,
        check=_jwt,
    ),
    _rule(
        "npm_token",
        r"(?i)\b(npm_[a-z0-9]{36})" + _END,
        ("npm_",),
        group=1,
    ),
    _rule(
        "pypi_token",
        r"pypi-AgEIcHlwaS5vcmc[\w-]{50,1000}",
        ("pypi-ageichlwas5vcmc",),
    ),
    _rule(
        "openai_api_key",
        r"\b(sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,200}T3BlbkFJ[A-Za-z0-9_-]{20,200}"
        r"|sk-[a-zA-Z0-9]{20}T3BlbkFJ[a-zA-Z0-9]{20})\b",
        ("t3blbkfj",),
        group=1,
    ),
    _rule(
        "anthropic_api_key",
        r"\b(sk-ant-(?:api03|admin01)-[a-zA-Z0-9_-]{93}AA)" + _END,
        ("sk-ant-",),
        group=1,
    ),
    _rule(
        "stripe_key",
        r"\b((?:sk|rk)_(?:test|live|prod)_[a-zA-Z0-9]{10,99})\b",
        ("sk_", "rk_"),
        group=1,
    ),
    _rule(
        "sendgrid_key",
        r"\b(SG\.[\w-]{22}\.[\w-]{43})" + _END,
        ("sg.",),
        group=1,
    ),
    _rule(
        "atlassian_token",
        r"\b(ATATT3[A-Za-z0-9_=-]{186})" + _END,
        ("atatt3",),
        group=1,
    ),
    _rule(
        "connection_string",
        r"\b[a-zA-Z][a-zA-Z0-9+.-]{1,20}://([^\s:/@'\"<>]{1,64}):([^\s/@'\"<>]{3,128})@[A-Za-z0-9.-]{1,253}",
        ("://",),
        score=0.85,
        check=_uri_password,
    ),
    _rule(
        "connection_string",
        r"(?i)\b(?:password|pwd)\s{0,3}=\s{0,3}([^;\r\n'\"]{3,128})",
        ("password", "pwd"),
        score=0.85,
        check=_conn_password,
    ),
    _rule(
        "auth_header",
        r"(?i)\b(?:Authorization|Proxy-Authorization)\s{0,3}:\s{0,3}(?:Basic|Bearer|Token)\s{1,3}"
        r"([A-Za-z0-9._~+/=-]{16,2000})",
        ("authorization",),
        group=1,
        score=0.8,
    ),
    # Keyword rules last: a provider rule on the same span wins.
    _rule(
        "password_assignment",
        # "password for the portal is …" may have words in between; bare "pass"/"pw" (verbs,
        # abbreviations) must be followed by the separator itself.
        r"(?i)(?<![A-Za-z0-9])(?:(?:password|passwd|passcode|passphrase|pwd)(?![A-Za-z])[\w \t]{0,30}?"
        r"|(?:pass|pw)(?=[ \t]{0,3}[:=]))"
        r"(?:[ \t]{0,3}(?:[:=]|:=|=>)|[ \t](?:is|was|will be)[ \t]|[ \t]-[ \t])[ \t]{0,5}"
        r"[\"'\x60]?([^\s\"'\x60<>]{6,64})",
        ("pass", "pwd", "pw"),
        score=0.75,
        check=_password,
        generic=True,
    ),
    _rule(
        "api_key_assignment",
        r"(?i)(?<![A-Za-z0-9])(?:api[_ .-]?key|apikey|access[_ .-]?key|secret[_ .-]?key|client[_ .-]?secret"
        r"|(?:auth|access|bearer|refresh|private|api)[_ .-]?token|secret|token|credentials?)"
        r"[\w.-]{0,20}[\"']?[ \t]{0,3}(?:=|:|:=|=>)[ \t]{0,5}[\"'\x60]?([A-Za-z0-9_.+/=~-]{12,200})",
        ("key", "token", "secret", "credential"),
        score=0.7,
        check=_api_key,
        generic=True,
    ),
)


# --- private keys are found procedurally: a lazy `[\s\S]{64,}?` body is a backtracking trap --

_PRIVATE_KEY_BEGIN = re.compile(r"-----BEGIN[ A-Z0-9_-]{0,40}PRIVATE KEY(?: BLOCK)?-----", re.IGNORECASE)
_PUTTY = re.compile(r"PuTTY-User-Key-File-[23]:[^\r\n]{0,100}")
_KEY_BODY_CHARS = re.compile(r"[A-Za-z0-9+/=]")
MAX_KEY_BODY = 20_000
MIN_KEY_BODY = 64  # gitleaks: at least 64 characters of key material
KEY_BODY_PROBE = 512  # look for them this far after the BEGIN line


def _private_keys(text: str) -> list[SecretHit]:
    hits: list[SecretHit] = []
    for match in _PRIVATE_KEY_BEGIN.finditer(text):
        if hits and match.start() < hits[-1].end:
            continue
        end_marker = text.find("-----END", match.end(), match.end() + MAX_KEY_BODY)
        body_end = end_marker if end_marker >= 0 else min(len(text), match.end() + MAX_KEY_BODY)
        # Key material starts right after the BEGIN line (after any Proc-Type headers).
        head = text[match.end() : min(body_end, match.end() + KEY_BODY_PROBE)]
        if len(_KEY_BODY_CHARS.findall(head)) < MIN_KEY_BODY:
            continue  # a BEGIN line quoted in documentation, not a key
        end = body_end
        if end_marker >= 0:
            closing = text.find("-----", end_marker + 8, end_marker + 80)
            end = closing + 5 if closing >= 0 else end_marker
        hits.append(SecretHit(match.start(), end, "private_key", 1.0))
    for match in _PUTTY.finditer(text):
        if "Private-Lines:" in text[match.end() : match.end() + 4000]:
            hits.append(SecretHit(match.start(), match.end(), "private_key", 1.0))
    return hits


def find_secrets(text: str, rules: tuple[SecretRule, ...] = RULES) -> list[SecretHit]:
    """Every secret in ``text``, by position; provider rules win over keyword rules."""
    lower = text.lower()
    hits = _private_keys(text) if "private" in lower or "putty" in lower else []
    for rule in rules:
        if not any(k in lower for k in rule.keywords):
            continue
        for match in rule.pattern.finditer(text):
            span = rule.check(text, match) if rule.check else _span(match, rule.group)
            if span is None or span[0] >= span[1]:
                continue
            value = text[span[0] : span[1]]
            if rule.min_entropy and shannon_entropy(value) < rule.min_entropy:
                continue
            hit = SecretHit(span[0], span[1], rule.kind, rule.score)
            if rule.generic and any(_overlap(hit, h) for h in hits):
                continue
            if any(h.start <= hit.start and hit.end <= h.end for h in hits):
                continue  # inside a key block or a longer token already found
            hits.append(hit)
    hits.sort(key=lambda h: (h.start, -h.end))
    return hits


def _overlap(a: SecretHit, b: SecretHit) -> bool:
    return a.start < b.end and b.start < a.end


# --- prefilter: every rule's match contains one of its keywords ---------------------------------

# Matches start at most ~420 characters before their keyword (an Azure SAS token's
# sig=, the 300 characters a connection string's Password= looks back for
# Server=) and end within ~1,100 after it (a PyPI token); Authorization headers
# reach 2,000, JWTs 12,000 and key blocks MAX_KEY_BODY.
SECRET_BEFORE = 600
SECRET_AFTER = 1_200
_LONG_REACH = {"authorization": 2_100}


def prefilter_triggers(rules: tuple[SecretRule, ...] = RULES) -> tuple[Trigger, ...]:
    """Triggers for :func:`find_secrets`: rule keywords, the JWT shape and key-block headers."""
    words = sorted({k for rule in rules if rule.kind != "jwt" for k in rule.keywords})
    triggers = [
        Trigger(re.escape(w), len(w), SECRET_BEFORE, _LONG_REACH.get(w, SECRET_AFTER), caseless=True)
        for w in words
    ]
    # "ey" alone is in every other word; a JWT starts with ey and 15 more token characters.
    triggers.append(Trigger(r"ey[A-Za-z0-9_-]{15}", 17, 16, 12_100))
    triggers += literals(("-----begin",), 80, MAX_KEY_BODY + 200)
    triggers += literals(("PuTTY-User-Key-File-",), 16, 4_200, caseless=False)
    return tuple(triggers)


PREFILTER_TRIGGERS = prefilter_triggers()


class SecretRecognizer(LocalRecognizer):
    """Presidio recogniser for :data:`RULES` and private-key blocks."""

    def __init__(self) -> None:
        super().__init__(supported_entities=[ENTITY], name=RECOGNIZER_NAME)

    def load(self) -> None:
        """Nothing to load: the rules are compiled at import."""

    def prefilter_spec(self) -> Windowed:
        """Where the fast path runs this recogniser: windows around rule keywords."""
        return Windowed(PREFILTER_TRIGGERS)

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        """Secrets in ``text``; ``recognition_metadata["attributes"]`` holds ``kind``."""
        if entities and ENTITY not in entities:
            return []
        return [
            RecognizerResult(
                entity_type=ENTITY,
                start=hit.start,
                end=hit.end,
                score=hit.score,
                recognition_metadata={
                    RecognizerResult.RECOGNIZER_NAME_KEY: RECOGNIZER_NAME,
                    RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                    ATTRIBUTES_KEY: {"kind": hit.kind},
                },
            )
            for hit in find_secrets(text)
        ]
