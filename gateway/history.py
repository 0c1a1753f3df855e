"""Which recipient domains each sender has written to: the memory behind the
policy's ``recipient: new_domain`` (a first message to a new domain is where
misaddressed mail and exfiltration to personal accounts show up)."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa

from gateway.store import Store
from gateway.store.schema import metadata

log = logging.getLogger(__name__)

# Records waiting to be written beyond this make DATA wait for the writer
# (back-pressure), rather than the backlog growing without bound.
HISTORY_BACKLOG = 1000
# Sender → domain pairs remembered as known; past this the memory starts over.
KNOWN_PAIRS_LIMIT = 100_000

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


class BatchedSenderHistory(SenderHistory):
    """The sender history as the SMTP path uses it: at every message's pace.

    ``known`` answers from memory the pairs it has seen in the store (a pair is
    never removed, so a remembered "known" stays true on every node; anything
    else is asked of the store), and ``record_many`` writes a batch of delivered
    messages in one transaction, counting each message, instead of three
    statements and a commit per message.  Together they were a fifth of the
    gateway's CPU per clean message.
    """

    def __init__(self, store: Store):
        super().__init__(store)
        self._known: set[tuple[str, str]] = set()

    def known(self, sender: str, domains: set[str]) -> frozenset[str]:
        key = sender.lower()
        unseen = {d for d in domains if (key, d) not in self._known}
        found = super().known(sender, unseen) if unseen else frozenset()
        self._remember(key, found)
        return frozenset(domains - unseen) | found

    def record_many(self, batch: list[tuple[str, list[str]]]) -> None:
        """Record several delivered messages: ``(sender, delivered recipients)`` each."""
        counts = Counter(
            (sender.lower(), domain)
            for sender, recipients in batch
            if sender
            for domain in {domain_of(r) for r in recipients if "@" in r}
        )
        if not counts:
            return
        now = datetime.now(UTC)
        with self.store.engine.begin() as conn:
            for sender in {s for s, _ in counts}:
                mine = {d: n for (s, d), n in counts.items() if s == sender}
                _write_pairs(conn, sender, mine, now)
        for sender, domain in counts:
            self._remember(sender, frozenset((domain,)))

    def _remember(self, sender: str, domains: frozenset[str]) -> None:
        if len(self._known) + len(domains) > KNOWN_PAIRS_LIMIT:
            self._known.clear()
        self._known.update((sender, d) for d in domains)


def _write_pairs(conn: sa.Connection, sender: str, counts: dict[str, int], now: datetime) -> None:
    """Add ``counts[domain]`` messages to each of this sender's pairs, creating new ones."""
    pairs = sa.and_(sender_domains.c.sender == sender, sender_domains.c.domain.in_(sorted(counts)))
    known = set(conn.execute(sa.select(sender_domains.c.domain).where(pairs)).scalars())
    for domain in sorted(set(counts) - known):
        values = {"first_seen": now, "last_seen": now, "messages": counts[domain]}
        conn.execute(sender_domains.insert().values(sender=sender, domain=domain, **values))
    for domain in sorted(known):
        conn.execute(
            sender_domains.update()
            .where(sender_domains.c.sender == sender, sender_domains.c.domain == domain)
            .values(last_seen=now, messages=sender_domains.c.messages + counts[domain])
        )


@dataclass
class HistoryRecorder:
    """Records where delivered mail went (the sender history) after the client got its 250.

    The history is best effort (a failed write never fails a message) but each
    record is a committed write: done before the reply, it put a disk sync into
    every message's latency and had concurrent sessions queue for SQLite's one
    writer.  One task writes the records in order instead, a batch per thread hop.
    A message arriving within milliseconds of an earlier one from the same sender
    may not see that delivery yet, as concurrent sessions never could.
    """

    history: SenderHistory | None
    _pending: list[tuple[str, list[str]]] = field(default_factory=list, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    async def add(self, sender: str, delivered: list[str]) -> None:
        """Queue one delivered message; waits only when the writer is far behind."""
        if self.history is None or not delivered:
            return
        self._pending.append((sender, list(delivered)))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())
        elif len(self._pending) >= HISTORY_BACKLOG:
            await asyncio.shield(self._task)

    async def _drain(self) -> None:
        history = self.history
        while self._pending and history is not None:
            batch, self._pending = self._pending, []
            await asyncio.to_thread(_record_all, history, batch)

    async def flush(self) -> None:
        """Wait until every queued record is written (at shutdown)."""
        if self._task is not None:
            await asyncio.shield(self._task)


def _record_all(history: SenderHistory, batch: list[tuple[str, list[str]]]) -> None:
    """Write a batch of history records: in one transaction when the history can."""
    try:
        if isinstance(history, BatchedSenderHistory):
            history.record_many(batch)
            return
        for sender, delivered in batch:
            history.record(sender, delivered)
    except Exception as exc:  # a missed history row must never fail anything else
        log.warning("could not record sender history (%d messages): %s", len(batch), type(exc).__name__)
