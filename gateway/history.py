"""Which recipient domains each sender has written to: the memory behind the
policy's ``recipient: new_domain`` (a first message to a new domain is where
misaddressed mail and exfiltration to personal accounts show up)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from gateway.store import Store
from gateway.store.schema import metadata

sender_domains = sa.Table(
    "sender_domains",
    metadata,
    sa.Column("sender", sa.Text, primary_key=True),
    sa.Column("domain", sa.Text, primary_key=True),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("messages", sa.Integer, nullable=False),
)


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower().rstrip(".")


class SenderHistory:
    """Reads and records sender → recipient-domain pairs in the store."""

    def __init__(self, store: Store):
        self.store = store

    def known(self, sender: str, domains: set[str]) -> frozenset[str]:
        """The subset of ``domains`` this sender has delivered mail to before."""
        if not sender or not domains:
            return frozenset()
        with self.store.engine.connect() as conn:
            return frozenset(conn.execute(_known_query(sender, domains)).scalars())

    def record(self, sender: str, recipients: list[str]) -> None:
        """Remember the domains a message from ``sender`` was delivered to."""
        domains = {domain_of(r) for r in recipients if "@" in r}
        if not sender or not domains:
            return
        now = datetime.now(UTC)
        with self.store.engine.begin() as conn:
            known = set(
                conn.execute(
                    sa.select(sender_domains.c.domain).where(
                        sender_domains.c.sender == sender.lower(),
                        sender_domains.c.domain.in_(sorted(domains)),
                    )
                ).scalars()
            )
            for domain in sorted(domains - known):
                conn.execute(
                    sender_domains.insert().values(
                        sender=sender.lower(), domain=domain, first_seen=now, last_seen=now, messages=1
                    )
                )
            if known:
                conn.execute(
                    sender_domains.update()
                    .where(
                        sender_domains.c.sender == sender.lower(), sender_domains.c.domain.in_(sorted(known))
                    )
                    .values(last_seen=now, messages=sender_domains.c.messages + 1)
                )


def _pairs(sender: str, domains: set[str]) -> sa.ColumnElement[bool]:
    return sa.and_(sender_domains.c.sender == sender.lower(), sender_domains.c.domain.in_(sorted(domains)))


def _known_query(sender: str, domains: set[str]) -> sa.Select[str]:
    return sa.select(sender_domains.c.domain).where(_pairs(sender, domains))
