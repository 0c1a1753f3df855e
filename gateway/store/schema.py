"""Table definitions: the single source the queries and the migrations agree on."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# A message the gateway kept: held for review, awaiting its sender, and what became of it.
messages = Table(
    "messages",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("status", String(24), nullable=False),
    Column("decision", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("sender", Text, nullable=False),
    Column("recipients", Text, nullable=False),  # JSON list
    Column("per_recipient", Text, nullable=False),  # JSON {recipient: action}
    Column("mail_options", Text, nullable=False),  # JSON list
    Column("rcpt_options", Text, nullable=False),  # JSON list of lists
    Column("rules", Text, nullable=False),  # JSON list of rule hits
    Column("findings", Text, nullable=False),  # JSON list of masked findings
    Column("subject", Text, nullable=False),
    Column("message_id", Text, nullable=False),
    Column("size", Integer, nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Index("ix_messages_status_created", "status", "created_at"),
)

# Append-only and hash-chained: each entry's hash covers the previous entry's hash.
audit = Table(
    "audit",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", String(32), nullable=False),
    Column("message", String(32), nullable=True),
    Column("detail", Text, nullable=False),  # JSON; masked values only
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_message", "message"),
)
