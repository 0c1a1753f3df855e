"""Whether a sender may be sent a notice: never a loop, never a flood (RFC 3834).

No notice goes to a null, external or forged sender, to mail that is itself
automatic (``Auto-Submitted`` other than ``no``, ``Precedence: bulk/list/junk``,
mailing-list headers, our own notices), and at most so many per sender per
rolling hour.
"""

from __future__ import annotations

import email.parser
import email.policy
import email.utils
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message

import sqlalchemy as sa

from gateway.confirm.tables import notice_log
from gateway.store import Store

ROBOT_LOCAL_PARTS = ("mailer-daemon", "postmaster", "noreply", "no-reply", "donotreply")
WINDOW = timedelta(hours=1)


def headers_of(raw: bytes) -> Message:
    """Only the header block, parsed leniently (the body is never needed here)."""
    return email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)


def is_internal(address: str, internal_domains: tuple[str, ...]) -> bool:
    domain = address.rpartition("@")[2].lower().rstrip(".")
    return bool(domain) and any(
        domain == d.lower() or domain.endswith("." + d.lower()) for d in internal_domains
    )


def is_automatic(headers: Message) -> str | None:
    """Why this mail counts as automatic (so it must get no notice), or None."""
    auto = str(headers.get("Auto-Submitted", "")).split(";", 1)[0].strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    precedence = str(headers.get("Precedence", "")).strip().lower()
    if precedence in ("bulk", "list", "junk"):
        return f"Precedence: {precedence}"
    for name in ("List-Id", "List-Unsubscribe", "List-Post"):
        if headers.get(name) is not None:
            return f"mailing-list header {name}"
    return None


@dataclass(frozen=True)
class NoticeGuard:
    """Decides whether a notice may be sent about a message, and to whom."""

    internal_domains: tuple[str, ...]
    gateway_address: str

    def refusal(self, headers: Message, sender: str) -> str | None:
        """Why no notice may go to ``sender`` about this mail, or None if one may."""
        if not sender or sender == "<>":
            return "null sender"
        local = sender.rpartition("@")[0].lower()
        if sender.lower() == self.gateway_address.lower() or local in ROBOT_LOCAL_PARTS:
            return "sender is a robot address"
        if local.startswith("owner-") or local.endswith("-request"):
            return "sender is a list address"
        if not is_internal(sender, self.internal_domains):
            return "sender is not in an internal domain"
        from_address = email.utils.parseaddr(str(headers.get("From", "")))[1]
        if not from_address or not is_internal(from_address, self.internal_domains):
            # The envelope claims an internal sender the message itself does not.
            return "From header is not an internal address"
        return is_automatic(headers)


class NoticeBudget:
    """At most ``per_hour`` notices per sender in any rolling hour, across every node."""

    def __init__(self, store: Store, per_hour: int):
        self.store = store
        self.per_hour = per_hour

    def take(self, sender: str) -> bool:
        """Spend one notice for ``sender``; False (and nothing spent) if the hour's budget is gone."""
        if self.per_hour <= 0:
            return False
        key = sender.lower()
        now = datetime.now(UTC)
        with self.store.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Concurrent inserts would not see each other: serialise per sender.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"notice|{key}"})
            # Insert first: on SQLite that takes the write lock before the count is read.
            inserted = conn.execute(notice_log.insert().values(sender=key, at=now)).inserted_primary_key
            row_id = inserted[0] if inserted else None
            conn.execute(
                notice_log.delete().where(notice_log.c.sender == key, notice_log.c.at < now - WINDOW)
            )
            used = conn.execute(
                sa.select(sa.func.count()).where(notice_log.c.sender == key, notice_log.c.at >= now - WINDOW)
            ).scalar_one()
            if used > self.per_hour:
                conn.execute(notice_log.delete().where(notice_log.c.id == row_id))
                return False
        return True
