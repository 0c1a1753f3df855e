"""Server-side console sessions with idle and absolute timeouts, and their CSRF tokens.

The cookie holds a random token; the database holds only its SHA-256, so a
copy of the database does not give anyone a live session.  Each session has
its own CSRF token (synchronizer pattern) that every form carries.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from gateway.console.tables import sessions
from gateway.store import Store


@dataclass(frozen=True)
class Session:
    token_hash: str
    username: str
    csrf: str
    created_at: datetime
    last_seen: datetime

    def csrf_ok(self, submitted: str) -> bool:
        """Constant-time check of a form's CSRF token against this session's."""
        return bool(submitted) and hmac.compare_digest(self.csrf.encode(), submitted.encode())


@dataclass(frozen=True)
class Timeouts:
    idle: timedelta
    absolute: timedelta


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(store: Store, username: str) -> str:
    """Start a session; return the token for the cookie (never stored as is)."""
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    with store.engine.begin() as conn:
        conn.execute(
            sessions.insert().values(
                token_hash=_hash(token),
                username=username,
                csrf=secrets.token_urlsafe(32),
                created_at=now,
                last_seen=now,
            )
        )
    return token


def load(store: Store, token: str, timeouts: Timeouts) -> Session | None:
    """The live session for a cookie token, refreshed; None if unknown or timed out."""
    if not token:
        return None
    key = _hash(token)
    now = datetime.now(UTC)
    with store.engine.begin() as conn:
        row = conn.execute(sessions.select().where(sessions.c.token_hash == key)).mappings().first()
        if row is None:
            return None
        created, seen = _aware(row["created_at"]), _aware(row["last_seen"])
        if now - seen > timeouts.idle or now - created > timeouts.absolute:
            conn.execute(sessions.delete().where(sessions.c.token_hash == key))
            return None
        conn.execute(sessions.update().where(sessions.c.token_hash == key).values(last_seen=now))
    return Session(key, row["username"], row["csrf"], created, now)


def end(store: Store, token_hash: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(sessions.delete().where(sessions.c.token_hash == token_hash))


def sweep(store: Store, timeouts: Timeouts) -> int:
    """Delete sessions past either timeout; return how many."""
    now = datetime.now(UTC)
    with store.engine.begin() as conn:
        result = conn.execute(
            sessions.delete().where(
                sa.or_(
                    sessions.c.last_seen < now - timeouts.idle,
                    sessions.c.created_at < now - timeouts.absolute,
                )
            )
        )
    return int(result.rowcount or 0)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
