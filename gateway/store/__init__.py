"""The store: held messages and the audit trail, in SQLite or PostgreSQL.

Synchronous SQLAlchemy Core; the async SMTP side calls it through
``asyncio.to_thread``.  Every write commits before it returns, because a 250
reply to the client may only follow a durable commit.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection, Engine

from gateway.model import Decision, Envelope, Finding, ScanResult
from gateway.store.schema import audit, messages

GENESIS = "0" * 64


class StoreError(Exception):
    """The store could not do what was asked (unreachable, or a conflicting change)."""


@dataclass
class StoredMessage:
    """A message the gateway kept, as the console and CLI see it."""

    id: str
    status: str
    decision: str
    created_at: datetime
    updated_at: datetime
    sender: str
    recipients: list[str]
    per_recipient: dict[str, str]
    mail_options: list[str]
    rcpt_options: list[list[str]]
    rules: list[dict[str, Any]]
    findings: list[Finding]
    subject: str
    message_id: str
    size: int
    raw: bytes = field(repr=False, default=b"")

    @property
    def envelope(self) -> Envelope:
        return Envelope(
            self.sender,
            tuple(self.recipients),
            tuple(self.mail_options),
            tuple(tuple(o) for o in self.rcpt_options),
        )


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str
    action: str
    message: str | None
    detail: dict[str, Any]
    prev_hash: str
    hash: str


def new_id() -> str:
    """A short, unguessable message id (shown in SMTP replies and headers)."""
    return secrets.token_hex(8)


class Store:
    """Held messages and the audit trail behind one SQLAlchemy engine."""

    def __init__(self, url: str):
        self.url = url
        self.engine = _make_engine(url)

    def migrate(self) -> None:
        """Bring the schema up to date (idempotent; safe on every start)."""
        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Several nodes may start at once against one database.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(727365)"))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "heads")  # features add migrations on branches of their own

    def close(self) -> None:
        self.engine.dispose()

    def keep(
        self,
        status: str,
        raw: bytes,
        envelope: Envelope,
        scan: ScanResult,
        decision: Decision,
        message_id: str | None = None,
    ) -> str:
        """Commit a message (held, or awaiting its sender) with its findings; return its id."""
        ident = message_id or new_id()
        now = _now()
        row = {
            "id": ident,
            "status": status,
            "decision": decision.action.label,
            "created_at": now,
            "updated_at": now,
            "sender": envelope.sender,
            "recipients": json.dumps(list(envelope.recipients)),
            "per_recipient": json.dumps({r: a.label for r, a in decision.per_recipient.items()}),
            "mail_options": json.dumps(list(envelope.mail_options)),
            "rcpt_options": json.dumps([list(o) for o in envelope.rcpt_options]),
            "rules": json.dumps([h.to_json() for h in decision.hits]),
            "findings": json.dumps([f.to_json() for f in scan.findings]),
            "subject": scan.subject,
            "message_id": scan.message_id,
            "size": len(raw),
            "raw": raw,
        }
        detail = {
            "decision": decision.action.label,
            "rules": decision.rule_names,
            "entities": _entity_counts(scan.findings),
            "recipients": len(envelope.recipients),
        }
        with self._begin() as conn:
            conn.execute(messages.insert().values(**row))
            self.append_audit(conn, "gateway", status, ident, detail)
        return ident

    def get(self, ident: str) -> StoredMessage | None:
        with self._connect() as conn:
            row = conn.execute(messages.select().where(messages.c.id == ident)).mappings().first()
        return _to_message(row) if row else None

    def list_messages(self, statuses: tuple[str, ...] = (), limit: int = 500) -> list[StoredMessage]:
        """Messages (without raw bytes), newest first, optionally by status."""
        cols = [c for c in messages.c if c.name != "raw"]
        query = sa.select(*cols).order_by(messages.c.created_at.desc()).limit(limit)
        if statuses:
            query = query.where(messages.c.status.in_(statuses))
        with self._connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [_to_message(r) for r in rows]

    def transition(
        self, ident: str, from_statuses: tuple[str, ...], to_status: str, actor: str, detail: dict[str, Any]
    ) -> bool:
        """Move a message between statuses atomically, with its audit entry.

        Returns False if the message is not in one of ``from_statuses`` (someone
        else acted on it first), so two reviewers cannot both release it.
        """
        with self._begin() as conn:
            result = conn.execute(
                messages.update()
                .where(messages.c.id == ident, messages.c.status.in_(from_statuses))
                .values(status=to_status, updated_at=_now())
            )
            if result.rowcount != 1:
                return False
            self.append_audit(conn, actor, to_status, ident, detail)
        return True

    def record(self, actor: str, action: str, message: str | None, detail: dict[str, Any]) -> None:
        """Append an audit entry on its own."""
        with self._begin() as conn:
            self.append_audit(conn, actor, action, message, detail)

    def audit_trail(self, message: str | None = None) -> list[AuditEntry]:
        query = audit.select().order_by(audit.c.seq)
        if message is not None:
            query = query.where(audit.c.message == message)
        with self._connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [_to_audit(r) for r in rows]

    def verify_audit(self) -> list[str]:
        """Check the hash chain; return a description of every broken link (empty if intact)."""
        problems: list[str] = []
        prev = GENESIS
        for entry in self.audit_trail():
            if entry.prev_hash != prev:
                problems.append(f"entry {entry.seq}: previous hash does not match entry before it")
            expected = _entry_hash(
                entry.prev_hash, entry.at, entry.actor, entry.action, entry.message, entry.detail
            )
            if entry.hash != expected:
                problems.append(f"entry {entry.seq}: content does not match its hash")
            prev = entry.hash
        return problems

    def append_audit(
        self, conn: Connection, actor: str, action: str, message: str | None, detail: dict[str, Any]
    ) -> None:
        """Append an audit entry inside the caller's transaction (commits with it)."""
        if conn.dialect.name == "postgresql":
            # Serialise appends across nodes so the chain stays linear.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(727366)"))
        last = conn.execute(sa.select(audit.c.hash).order_by(audit.c.seq.desc()).limit(1)).scalar()
        prev = last or GENESIS
        at = _now()
        conn.execute(
            audit.insert().values(
                at=at,
                actor=actor,
                action=action,
                message=message,
                detail=json.dumps(detail, sort_keys=True),
                prev_hash=prev,
                hash=_entry_hash(prev, at, actor, action, message, detail),
            )
        )

    def _connect(self) -> Connection:
        try:
            return self.engine.connect()
        except sa.exc.OperationalError as exc:
            raise StoreError(f"store unavailable: {exc.orig}") from exc

    def _begin(self) -> Any:
        try:
            return self.engine.begin()
        except sa.exc.OperationalError as exc:
            raise StoreError(f"store unavailable: {exc.orig}") from exc


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if str(path) not in ("", ":memory:"):
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return sa.create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (console) never block the SMTP path
    cursor.execute("PRAGMA synchronous=FULL")  # a 250 follows a commit that survives power loss
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _now() -> datetime:
    return datetime.now(UTC)


def _entity_counts(findings: list[Finding]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.entity_type] = counts.get(f.entity_type, 0) + 1
    return counts


def _entry_hash(
    prev: str, at: datetime, actor: str, action: str, message: str | None, detail: dict[str, Any]
) -> str:
    stamp = at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
    payload = json.dumps([prev, stamp, actor, action, message, detail], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything here is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _to_message(row: Any) -> StoredMessage:
    return StoredMessage(
        id=row["id"],
        status=row["status"],
        decision=row["decision"],
        created_at=_aware(row["created_at"]),
        updated_at=_aware(row["updated_at"]),
        sender=row["sender"],
        recipients=json.loads(row["recipients"]),
        per_recipient=json.loads(row["per_recipient"]),
        mail_options=json.loads(row["mail_options"]),
        rcpt_options=json.loads(row["rcpt_options"]),
        rules=json.loads(row["rules"]),
        findings=[Finding.from_json(f) for f in json.loads(row["findings"])],
        subject=row["subject"],
        message_id=row["message_id"],
        size=row["size"],
        raw=bytes(row["raw"]) if "raw" in row else b"",
    )


def _to_audit(row: Any) -> AuditEntry:
    return AuditEntry(
        seq=row["seq"],
        at=_aware(row["at"]),
        actor=row["actor"],
        action=row["action"],
        message=row["message"],
        detail=json.loads(row["detail"]),
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


__all__ = ["AuditEntry", "Store", "StoreError", "StoredMessage", "new_id"]
