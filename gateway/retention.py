"""Retention of held mail: expire what nobody reviewed, then purge content after a further period.

Run by ``dlp-gateway held expire`` (from a systemd timer or cron, e.g. daily).
Expiry goes through ``gateway.review`` like any reviewer action, with the actor
``retention``; purging deletes the stored message (its raw bytes and findings)
but never the audit trail, which keeps the decision, rules and entity counts.
Only ``held`` messages expire here: messages awaiting their sender expire by
the confirm feature's own rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from gateway.relay import NextHop
from gateway.review import ReviewError, reject, release
from gateway.settings import RetentionSettings
from gateway.store import Store
from gateway.store.schema import messages

ACTOR = "retention"
PURGEABLE = ("released", "rejected")


@dataclass
class RetentionReport:
    expired: list[str] = field(default_factory=list)
    purged: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def overdue(store: Store, older_than: datetime) -> list[str]:
    """Held messages received before ``older_than``, oldest first."""
    query = (
        sa.select(messages.c.id)
        .where(messages.c.status == "held", messages.c.created_at < older_than)
        .order_by(messages.c.created_at)
    )
    with store.engine.connect() as conn:
        return [row[0] for row in conn.execute(query)]


def purgeable(store: Store, older_than: datetime) -> list[str]:
    """Released or rejected messages whose last change was before ``older_than``."""
    query = sa.select(messages.c.id).where(
        messages.c.status.in_(PURGEABLE), messages.c.updated_at < older_than
    )
    with store.engine.connect() as conn:
        return [row[0] for row in conn.execute(query)]


def purge(store: Store, ident: str, days: float) -> bool:
    """Delete one finished message's stored copy, with an audit entry; False if it changed meanwhile."""
    with store.engine.begin() as conn:
        gone = conn.execute(messages.delete().where(messages.c.id == ident, messages.c.status.in_(PURGEABLE)))
    if gone.rowcount != 1:
        return False
    store.record(ACTOR, "purged", ident, {"after_days": days})
    return True


async def apply_retention(
    store: Store,
    hop: NextHop,
    settings: RetentionSettings,
    now: datetime | None = None,
    dry_run: bool = False,
) -> RetentionReport:
    """Expire overdue held messages by the configured action, then purge old finished ones."""
    now = now or datetime.now(UTC)
    report = RetentionReport()
    expire_before = now - timedelta(days=settings.expire_after_days)
    purge_before = now - timedelta(days=settings.purge_after_days)
    reason = f"expired: not reviewed within {settings.expire_after_days:g} days"
    for ident in overdue(store, expire_before):
        if dry_run:
            report.expired.append(ident)
            continue
        try:
            if settings.expire_action == "release":
                await release(store, hop, ident, ACTOR, None, reason)
            else:
                reject(store, ident, ACTOR, reason)
            report.expired.append(ident)
        except ReviewError as exc:
            report.failed[ident] = str(exc)
    for ident in purgeable(store, purge_before):
        if dry_run or purge(store, ident, settings.purge_after_days):
            report.purged.append(ident)
    return report
