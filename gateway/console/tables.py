"""Tables the console adds to the store (created by migration 0002).

Kept beside the console rather than in ``gateway.store.schema`` because only
the console and its CLI commands use them.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# Console accounts.  Only argon2 hashes are kept; the lockout columns carry the
# back-off state so it survives restarts and is shared by every node.
users = Table(
    "console_users",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("email", Text, nullable=False, default=""),
    Column("role", String(16), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("lockouts", Integer, nullable=False, default=0),
    Column("locked_until", DateTime(timezone=True), nullable=True),
)

# Server-side sessions, so a session can be ended (logout, role change) at once.
# The cookie carries a random token; only its SHA-256 is stored.
sessions = Table(
    "console_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("username", String(64), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Index("ix_console_sessions_user", "username"),
)

notes = Table(
    "message_notes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message", String(32), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("author", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Index("ix_message_notes_message", "message"),
)

assignments = Table(
    "message_assignments",
    metadata,
    Column("message", String(32), primary_key=True),
    Column("assignee", String(64), nullable=False),
    Column("assigned_by", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

# Four-eyes: the first reviewer's approval; a different reviewer then releases.
approvals = Table(
    "message_approvals",
    metadata,
    Column("message", String(32), primary_key=True),
    Column("approver", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("reason", Text, nullable=False, default=""),
)

# Notices a reviewer asked to be sent (e.g. "your message was rejected"); the
# notice sender picks up rows whose sent_at is empty.
sender_notices = Table(
    "sender_notices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message", String(32), nullable=False),
    Column("kind", String(24), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("requested_by", String(64), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True),
)
