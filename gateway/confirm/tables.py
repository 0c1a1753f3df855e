"""Tables warn-and-confirm adds to the store (created by migration 0003)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

# One per message awaiting its sender.  Only the SHA-256 of the token is kept.
confirmations = Table(
    "confirmations",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("message", String(32), nullable=False, unique=True),
    Column("sender", Text, nullable=False),
    Column("subject", Text, nullable=False),  # as shown to the sender: detected values masked
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
    Column("outcome", String(16), nullable=False),  # pending, sent, cancelled, expired
    Index("ix_confirmations_outcome_expiry", "outcome", "expires_at"),
)

# Notices sent, for the per-sender hourly limit (rolling window, shared by every node).
notice_log = Table(
    "notice_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sender", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_notice_log_sender_at", "sender", "at"),
)

# Per-installation keys (notice signatures, form tokens), made on first use and shared by every node.
gateway_secrets = Table(
    "gateway_secrets",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", String(128), nullable=False),
)
