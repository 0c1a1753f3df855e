"""Warn and confirm: the delivery outbox, sender confirmations, notice rate limits.

Revision ID: 0003
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("purpose", sa.String(24), nullable=False),
        sa.Column("message", sa.String(32), nullable=True),
        sa.Column("sender", sa.Text, nullable=False),
        sa.Column("recipients", sa.Text, nullable=False),
        sa.Column("mail_options", sa.Text, nullable=False),
        sa.Column("rcpt_options", sa.Text, nullable=False),
        sa.Column("header", sa.Text, nullable=False),
        sa.Column("raw", sa.LargeBinary, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("results", sa.Text, nullable=False),
        sa.Column("on_done", sa.Text, nullable=True),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("last_reply", sa.Text, nullable=False),
    )
    op.create_index("ix_outbox_state_due", "outbox", ["state", "next_attempt_at"])
    op.create_index("ix_outbox_message", "outbox", ["message"])
    op.create_table(
        "confirmations",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("message", sa.String(32), nullable=False, unique=True),
        sa.Column("sender", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
    )
    op.create_index("ix_confirmations_outcome_expiry", "confirmations", ["outcome", "expires_at"])
    op.create_table(
        "notice_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sender", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_notice_log_sender_at", "notice_log", ["sender", "at"])
    op.create_table(
        "gateway_secrets",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.String(128), nullable=False),
    )


def downgrade() -> None:
    for table in ("gateway_secrets", "notice_log", "confirmations", "outbox"):
        op.drop_table(table)
