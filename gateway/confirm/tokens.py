"""Confirmation tokens, form tokens and the signature that marks the gateway's own notices.

Tokens are 160 random bits in lower-case base32, so they survive mail systems
that fold the case of an address's local part (``dlp-confirm+TOKEN@…``).  Only
their SHA-256 is stored.  The other two are HMACs under a per-installation key
kept in the store, so every node of a cluster agrees on them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time

import sqlalchemy as sa

from gateway.confirm.tables import gateway_secrets
from gateway.store import Store

TOKEN_BYTES = 20
NOTICE_HEADER = "X-DLP-Notice"
# A notice older than this is no longer recognised as ours (it would be scanned like any mail).
NOTICE_MAX_AGE_S = 30 * 86400
_NOTICE_VALUE = re.compile(r"^v1; id=(?P<id>[0-9a-f]{1,32}); t=(?P<t>\d{1,12}); sig=(?P<sig>[0-9a-f]{64})$")


def new_token() -> str:
    return base64.b32encode(secrets.token_bytes(TOKEN_BYTES)).decode("ascii").rstrip("=").lower()


def token_hash(token: str) -> str:
    """What the store keeps of a token (case-insensitive, as mail systems may fold it)."""
    return hashlib.sha256(token.strip().lower().encode("utf-8")).hexdigest()


def installation_key(store: Store, name: str = "confirm") -> bytes:
    """The installation's key of that name, created on first use."""
    query = sa.select(gateway_secrets.c.value).where(gateway_secrets.c.name == name)
    with store.engine.connect() as conn:
        value = conn.execute(query).scalar()
    if value is None:
        try:
            with store.engine.begin() as conn:
                conn.execute(gateway_secrets.insert().values(name=name, value=secrets.token_hex(32)))
        except sa.exc.IntegrityError:
            pass  # another node made it first; use theirs
        with store.engine.connect() as conn:
            value = conn.execute(query).scalar_one()
    return bytes.fromhex(str(value))


def form_token(key: bytes, hashed_token: str) -> str:
    """The anti-forgery field of a confirmation form, tied to that confirmation."""
    return hmac.new(key, f"form|{hashed_token}".encode(), hashlib.sha256).hexdigest()


def form_token_ok(key: bytes, hashed_token: str, given: str) -> bool:
    return hmac.compare_digest(form_token(key, hashed_token), given)


def sign_notice(key: bytes, notice_id: str, raw: bytes, now: float | None = None) -> bytes:
    """``raw`` with the header line that lets the gateway recognise it as its own notice.

    The signature covers the body, so the header cannot be copied onto other mail
    to slip it past scanning.
    """
    issued = int(now if now is not None else time.time())
    sig = _signature(key, notice_id, issued, raw)
    return f"{NOTICE_HEADER}: v1; id={notice_id}; t={issued}; sig={sig}\r\n".encode("ascii") + raw


def is_own_notice(key: bytes, raw: bytes, header_value: str | None, now: float | None = None) -> bool:
    """True if ``header_value`` (the message's X-DLP-Notice) is our valid, recent signature of it."""
    if not header_value:
        return False
    match = _NOTICE_VALUE.match(" ".join(header_value.split()))
    if match is None:
        return False
    issued = int(match["t"])
    age = (now if now is not None else time.time()) - issued
    if not 0 <= age <= NOTICE_MAX_AGE_S:
        return False
    return hmac.compare_digest(_signature(key, match["id"], issued, raw), match["sig"])


def _signature(key: bytes, notice_id: str, issued: int, raw: bytes) -> str:
    payload = f"notice|{notice_id}|{issued}|{_body_digest(raw)}".encode()
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def _body_digest(raw: bytes) -> str:
    """The body's digest, immune to line-ending and trailing-space changes in transit."""
    _, sep, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    lines = [line.rstrip() for line in body.split(b"\n")] if sep else []
    while lines and not lines[-1]:
        lines.pop()
    return hashlib.sha256(b"\n".join(lines)).hexdigest()
