"""The store: held messages and the audit trail, in SQLite or PostgreSQL.

Synchronous SQLAlchemy Core; the async SMTP side calls it through
``asyncio.to_thread``.  Every write commits before it returns, because a 250
reply to the client may only follow a durable commit.

A message's bytes, subject, findings and rule hits are sealed with the store's
keyring (``gateway.store.crypto``) when one is configured; everything else
(status, envelope, dates) stays readable to the database for queries.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
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
from gateway.store.crypto import PLAINTEXT, Keyring, Slot
from gateway.store.errors import CryptoError, StoreError
from gateway.store.schema import audit, messages
from gateway.store.sealed import RekeyReport, rekey, unknown_keys

log = logging.getLogger(__name__)

GENESIS = "0" * 64


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
    """Held messages and the audit trail behind one SQLAlchemy engine.

    ``keyring`` seals what is written and opens what is read; without one the
    store reads and writes plaintext, as it always did.
    """

    def __init__(self, url: str, keyring: Keyring | None = None):
        self.url = url
        self.engine = _make_engine(url)
        self.keyring = keyring or PLAINTEXT

    def migrate(self) -> None:
        """Bring the schema up to date (idempotent; safe on every start), then check that
        every key the store's values were sealed with is configured."""
        self.upgrade()
        self.check_keys()

    def check_keys(self) -> None:
        """Refuse a keyring that cannot read the store: better no start than a node that
        cannot open the mail it holds, or writes under a key its peers do not have."""
        missing = unknown_keys(self.engine, self.keyring)
        if missing:
            counts = ", ".join(f"{kid} ({rows} rows)" for kid, rows in sorted(missing.items()))
            raise CryptoError(
                f"the store holds values encrypted under key(s) that are not configured: {counts}; "
                "set DLP_GATEWAY_ENCRYPTION_KEY (or encryption.key) to the current key and list "
                "older ones in encryption.old_keys"
            )

    def rekey(self, batch: int = 100, pause_s: float = 0.0) -> RekeyReport:
        """Re-seal every value not under the current key (see ``gateway.store.sealed``)."""
        report = rekey(self.engine, self.keyring, batch, pause_s)
        if report.resealed and self.engine.dialect.name == "sqlite":
            # Copy the log into the file and empty it, so the pages that held the old
            # values are overwritten (secure_delete) rather than kept in the log.
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return report

    async def maintain_encryption(self, interval_s: float, batch: int) -> None:
        """For the running gateway: say at start whether mail is encrypted at rest, then
        re-seal values under old keys (or none) every ``interval_s`` (0: never)."""
        if not self.keyring.enabled:
            log.warning(
                "encryption at rest is off: held mail is stored unencrypted; set "
                "DLP_GATEWAY_ENCRYPTION_KEY (make a key with `dlp-gateway store genkey`)"
            )
            return
        assert self.keyring.current is not None
        log.info("encryption at rest on, current key %s", self.keyring.current.id)
        while interval_s > 0:
            try:
                report = await asyncio.to_thread(self.rekey, batch, 0.05)
            except (StoreError, sa.exc.SQLAlchemyError, OSError) as exc:
                log.error("rekey: %s", exc)  # the store is down: try again next time
            else:
                _log_rekey(report)
            await asyncio.sleep(interval_s)

    def upgrade(self) -> None:
        """Run the schema migrations."""
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
        seal = self.keyring.seal_text
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
            "rules": seal(json.dumps([h.to_json() for h in decision.hits]), _slot("rules", ident)),
            "findings": seal(json.dumps([f.to_json() for f in scan.findings]), _slot("findings", ident)),
            "subject": seal(scan.subject, _slot("subject", ident)),
            "message_id": scan.message_id,
            "size": len(raw),
            "raw": self.keyring.seal(raw, _slot("raw", ident)),
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
        return _to_message(row, self.keyring) if row else None

    def list_messages(self, statuses: tuple[str, ...] = (), limit: int = 500) -> list[StoredMessage]:
        """Messages (without raw bytes), newest first, optionally by status."""
        cols = [c for c in messages.c if c.name != "raw"]
        query = sa.select(*cols).order_by(messages.c.created_at.desc()).limit(limit)
        if statuses:
            query = query.where(messages.c.status.in_(statuses))
        with self._connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [_to_message(r, self.keyring) for r in rows]

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
        engine = sa.create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return sa.create_engine(url, pool_pre_ping=True, hide_parameters=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (console) never block the SMTP path
    cursor.execute("PRAGMA synchronous=FULL")  # a 250 follows a commit that survives power loss
    cursor.execute("PRAGMA busy_timeout=30000")
    # Deleted and rewritten content is zeroed, not left in free pages: a purged message
    # or a value re-encrypted by rekey must not survive in the file in plaintext.
    cursor.execute("PRAGMA secure_delete=ON")
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


def _slot(column: str, ident: str) -> Slot:
    return Slot("messages", column, ident)


def open_message_text(keyring: Keyring, row: Any, column: str) -> str:
    """A sealed text column (``subject``, ``findings``, ``rules``) of a ``messages`` row, opened."""
    return keyring.open_text(row[column], _slot(column, row["id"]))


def open_message_raw(keyring: Keyring, ident: str, stored: bytes) -> bytes:
    """A ``messages.raw`` value, opened."""
    return keyring.open(bytes(stored), _slot("raw", ident))


def _log_rekey(report: RekeyReport) -> None:
    if report.resealed:
        log.info("rekey: %d row(s) re-encrypted under the current key", report.resealed)
    for where, problem in list(report.failed.items())[:10]:
        log.error("rekey: %s: %s", where, problem)


def _to_message(row: Any, keyring: Keyring) -> StoredMessage:
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
        rules=json.loads(open_message_text(keyring, row, "rules")),
        findings=[Finding.from_json(f) for f in json.loads(open_message_text(keyring, row, "findings"))],
        subject=open_message_text(keyring, row, "subject"),
        message_id=row["message_id"],
        size=row["size"],
        raw=open_message_raw(keyring, row["id"], row["raw"]) if "raw" in row else b"",
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


__all__ = [
    "AuditEntry",
    "CryptoError",
    "Keyring",
    "Store",
    "StoreError",
    "StoredMessage",
    "new_id",
    "open_message_raw",
    "open_message_text",
]
