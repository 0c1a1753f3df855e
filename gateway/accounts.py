"""Console accounts: roles, argon2 password hashes, and lockout with back-off.

Used by ``dlp-gateway user add`` and by the console's login page, so both keep
the same rules.  Every login and failure is written to the audit trail.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.console.tables import sessions, users
from gateway.store import Store

MIN_PASSWORD = 12
USERNAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-@")


class Role(enum.IntEnum):
    """What a console user may do; each role can do everything the ones below it can."""

    AUDITOR = 1  # reads everything (masked), acts on nothing
    REVIEWER = 2  # releases, rejects, notes, assigns
    ADMIN = 3  # also manages accounts and sees the settings

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, name: str) -> Role:
        try:
            return cls[name.upper()]
        except KeyError:
            raise AccountError(f"unknown role {name!r} (reviewer, auditor or admin)") from None


class AccountError(Exception):
    """An account cannot be created or changed as asked."""


@dataclass(frozen=True)
class User:
    username: str
    email: str
    role: Role
    disabled: bool
    failed_logins: int
    lockouts: int
    locked_until: datetime | None

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now


@dataclass(frozen=True)
class LockoutPolicy:
    threshold: int = 5
    base_s: float = 60.0
    max_s: float = 3600.0

    def period(self, lockouts_so_far: int) -> timedelta:
        """How long the next lockout lasts: doubling with each one, capped."""
        return timedelta(seconds=min(self.base_s * (2**lockouts_so_far), self.max_s))


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    reason: str  # "ok", "bad-credentials", "locked", "disabled"


def _hasher() -> PasswordHasher:
    return PasswordHasher()  # argon2id with the library's current recommended parameters


# Verified against when the username is unknown, so a miss costs as much as a hit
# and response times do not tell which usernames exist.
_DUMMY_HASH = _hasher().hash("not-a-password-of-anyone")


class Accounts:
    """Console users kept in the store's database."""

    def __init__(self, store: Store, lockout: LockoutPolicy | None = None):
        self.store = store
        self.lockout = lockout or LockoutPolicy()

    def add(self, username: str, role: Role, password: str, email: str = "", actor: str = "cli") -> User:
        """Create an account; refuse a taken name or a short password."""
        username = normalise_username(username)
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"password must be at least {MIN_PASSWORD} characters")
        row = {
            "username": username,
            "email": email.strip().lower(),
            "role": role.label,
            "password_hash": _hasher().hash(password),
            "created_at": _now(),
            "disabled": False,
            "failed_logins": 0,
            "lockouts": 0,
            "locked_until": None,
        }
        with self.store.engine.begin() as conn:
            if conn.execute(sa.select(users.c.username).where(users.c.username == username)).first():
                raise AccountError(f"user {username!r} already exists")
            conn.execute(users.insert().values(**row))
        self.store.record(actor, "user-added", None, {"username": username, "role": role.label})
        return self.get(username) or _missing(username)

    def get(self, username: str) -> User | None:
        with self.store.engine.connect() as conn:
            row = conn.execute(users.select().where(users.c.username == username.lower())).mappings().first()
        return _to_user(row) if row else None

    def all(self) -> list[User]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(users.select().order_by(users.c.username)).mappings().all()
        return [_to_user(r) for r in rows]

    def set_role(self, username: str, role: Role, actor: str) -> None:
        """Change a role; the user's sessions end so the new role applies at once."""
        self._update(username, {"role": role.label})
        self.end_sessions(username)
        self.store.record(actor, "user-role", None, {"username": username, "role": role.label})

    def set_disabled(self, username: str, disabled: bool, actor: str) -> None:
        self._update(username, {"disabled": disabled})
        if disabled:
            self.end_sessions(username)
        self.store.record(
            actor, "user-disabled" if disabled else "user-enabled", None, {"username": username}
        )

    def unlock(self, username: str, actor: str) -> None:
        self._update(username, {"failed_logins": 0, "locked_until": None})
        self.store.record(actor, "user-unlocked", None, {"username": username})

    def set_password(self, username: str, password: str, actor: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"password must be at least {MIN_PASSWORD} characters")
        self._update(username, {"password_hash": _hasher().hash(password)})
        self.end_sessions(username)
        self.store.record(actor, "user-password", None, {"username": username})

    def end_sessions(self, username: str) -> None:
        with self.store.engine.begin() as conn:
            conn.execute(sessions.delete().where(sessions.c.username == username))

    def authenticate(self, username: str, password: str, client: str) -> LoginResult:
        """Check a password, applying lockout, and audit the attempt either way."""
        name = username.strip().lower()[:64]
        now = _now()
        user = self.get(name)
        if user is None:
            _verify(_DUMMY_HASH, password)
            self._audit_failure(name, client, "unknown-user")
            return LoginResult(None, "bad-credentials")
        if user.locked(now):
            # Do not even check the password: a locked account gives no oracle.
            self._audit_failure(name, client, "locked")
            return LoginResult(None, "locked")
        with self.store.engine.connect() as conn:
            stored = conn.execute(
                sa.select(users.c.password_hash).where(users.c.username == name)
            ).scalar_one()
        if not _verify(stored, password):
            locked = self._count_failure(user, now)
            self._audit_failure(name, client, "locked-out" if locked else "bad-password")
            return LoginResult(None, "locked" if locked else "bad-credentials")
        if user.disabled:
            self._audit_failure(name, client, "disabled")
            return LoginResult(None, "disabled")
        self._update(name, {"failed_logins": 0, "lockouts": 0, "locked_until": None})
        if _hasher().check_needs_rehash(stored):
            self._update(name, {"password_hash": _hasher().hash(password)})
        self.store.record(name, "login", None, {"client": client})
        return LoginResult(self.get(name), "ok")

    def _count_failure(self, user: User, now: datetime) -> bool:
        """Count a failed password; lock the account when the threshold is reached."""
        failures = user.failed_logins + 1
        if failures < self.lockout.threshold:
            self._update(user.username, {"failed_logins": failures})
            return False
        until = now + self.lockout.period(user.lockouts)
        self._update(
            user.username, {"failed_logins": 0, "lockouts": user.lockouts + 1, "locked_until": until}
        )
        self.store.record(
            "console",
            "user-locked",
            None,
            {
                "username": user.username,
                "until": until.isoformat(timespec="seconds"),
                "lockout": user.lockouts + 1,
            },
        )
        return True

    def _audit_failure(self, username: str, client: str, why: str) -> None:
        self.store.record(username or "(empty)", "login-failed", None, {"client": client, "why": why})

    def _update(self, username: str, values: dict[str, object]) -> None:
        with self.store.engine.begin() as conn:
            result = conn.execute(users.update().where(users.c.username == username).values(**values))
        if result.rowcount != 1:
            raise AccountError(f"no such user {username!r}")


def normalise_username(username: str) -> str:
    """Lower-case, and only characters that are safe in logs and URLs."""
    name = username.strip().lower()
    if not name or len(name) > 64 or not set(name) <= USERNAME_CHARS:
        raise AccountError("username must be 1-64 characters of a-z, 0-9, '.', '_', '-', '@'")
    return name


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher().verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _to_user(row: sa.RowMapping) -> User:
    return User(
        username=row["username"],
        email=row["email"],
        role=Role.parse(row["role"]),
        disabled=bool(row["disabled"]),
        failed_logins=row["failed_logins"],
        lockouts=row["lockouts"],
        locked_until=_aware(row["locked_until"]),
    )


def _missing(username: str) -> User:
    raise AccountError(f"user {username!r} vanished while being created")
