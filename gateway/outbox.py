"""The outbox: deliveries the gateway owes the next hop, committed before they are tried.

Anything sent after the client's SMTP transaction is over (a released message,
a message its sender confirmed, a notice to a sender) is first a row here, so a
crash or a down next hop never loses it.  A worker in each gateway process
claims due rows (compare-and-set on the state, ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL so several nodes share one queue), delivers them and records the
next hop's answer per recipient: 4xx and connection failures are retried with
exponential back-off, 5xx fails that recipient for good.  A claim carries a
lease; a row whose claimer died is queued again once the lease runs out.

When a job was started by moving a kept message to a "claimed" status (held →
releasing, pending → confirmed), finishing the job moves the message on, in the
same transaction as the job's own state, with its audit entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Column, DateTime, Index, Integer, LargeBinary, MetaData, String, Table, Text
from sqlalchemy.engine import Connection

from gateway.relay import Delivery, NextHop, Reply
from gateway.settings import OutboxSettings
from gateway.store import CryptoError, Store, StoreError, new_id, open_message_raw
from gateway.store.crypto import Slot
from gateway.store.schema import messages

log = logging.getLogger(__name__)

metadata = MetaData()

# Created by migration 0003.
outbox = Table(
    "outbox",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("purpose", String(24), nullable=False),  # release, confirmed, notice:warn, ...
    Column("message", String(32), nullable=True),  # the kept message this job is about
    Column("sender", Text, nullable=False),
    Column("recipients", Text, nullable=False),  # JSON list
    Column("mail_options", Text, nullable=False),  # JSON list
    Column("rcpt_options", Text, nullable=False),  # JSON {recipient: [options]}
    Column("header", Text, nullable=False),  # header lines put before the raw message
    Column("raw", LargeBinary, nullable=True),  # None: the kept message's raw bytes
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("results", Text, nullable=False),  # JSON {recipient: {"state": ..., "reply": ...}}
    Column("on_done", Text, nullable=True),  # JSON OnDone
    Column("actor", Text, nullable=False),
    Column("last_reply", Text, nullable=False),
    Index("ix_outbox_state_due", "state", "next_attempt_at"),
    Index("ix_outbox_message", "message"),
)

QUEUED = "queued"
DELIVERING = "delivering"
DELIVERED = "delivered"
FAILED = "failed"

PENDING = "pending"  # per-recipient: not yet accepted or refused for good


@dataclass(frozen=True)
class OnDone:
    """What a kept message becomes when its job finishes."""

    claimed: str  # its status while the job runs
    delivered: str  # once at least one recipient has it
    failed: str  # when no recipient could get it

    def to_json(self) -> str:
        return json.dumps({"claimed": self.claimed, "delivered": self.delivered, "failed": self.failed})


@dataclass(frozen=True)
class NewJob:
    """A delivery to queue.  ``raw`` None means: the kept message ``message``'s bytes."""

    purpose: str
    sender: str
    recipients: tuple[str, ...]
    raw: bytes | None = None
    message: str | None = None
    header: str = ""
    mail_options: tuple[str, ...] = ()
    rcpt_options: dict[str, list[str]] = field(default_factory=dict)
    on_done: OnDone | None = None
    actor: str = "gateway"


@dataclass(frozen=True)
class Job:
    """A claimed job, ready to deliver to its still-pending recipients."""

    id: str
    purpose: str
    message: str | None
    sender: str
    pending: tuple[str, ...]
    body: bytes
    mail_options: list[str]
    rcpt_options: dict[str, list[str]]
    attempts: int
    created_at: datetime


@dataclass(frozen=True)
class JobOutcome:
    """Where a job stands after one attempt."""

    id: str
    state: str
    delivered: list[str]
    refused: dict[str, str]
    reply: str


@dataclass(frozen=True)
class Transition:
    """Move a kept message between statuses, with the audit entry saying who and why."""

    ident: str
    from_statuses: tuple[str, ...]
    to_status: str
    actor: str
    detail: dict[str, Any]


class Outbox:
    """The outbox table behind the store's engine.  Synchronous, like the store."""

    def __init__(self, store: Store, settings: OutboxSettings | None = None):
        self.store = store
        self.settings = settings or OutboxSettings()

    def add(self, job: NewJob) -> str:
        """Queue a job on its own; return its id."""
        with self.store.engine.begin() as conn:
            return self.insert(conn, job)

    def insert(self, conn: Connection, job: NewJob, claim: bool = False) -> str:
        """Queue a job inside the caller's transaction, so it commits with what caused it.

        ``claim`` inserts it already claimed by the caller (who delivers it at once);
        should the caller die, the lease runs out and a worker takes it over.
        """
        now = _now()
        ident = new_id()
        conn.execute(
            outbox.insert().values(
                id=ident,
                purpose=job.purpose,
                message=job.message,
                sender=job.sender,
                recipients=json.dumps(list(job.recipients)),
                mail_options=json.dumps(list(job.mail_options)),
                rcpt_options=json.dumps(job.rcpt_options),
                header=job.header,
                # Notices quote masked findings and carry a live confirmation link.
                raw=None if job.raw is None else self.store.keyring.seal(job.raw, _raw_slot(ident)),
                state=DELIVERING if claim else QUEUED,
                attempts=1 if claim else 0,
                next_attempt_at=now,
                lease_until=now + timedelta(seconds=self.settings.lease_s) if claim else None,
                created_at=now,
                updated_at=now,
                results=json.dumps({r: {"state": PENDING, "reply": ""} for r in job.recipients}),
                on_done=job.on_done.to_json() if job.on_done else None,
                actor=job.actor,
                last_reply="",
            )
        )
        return ident

    def transition_and_queue(self, change: Transition, job: NewJob, claim: bool = False) -> Job | None:
        """Move a kept message (compare-and-set) and queue its delivery in one transaction.

        None if the message was not in one of ``from_statuses`` (someone else acted first).
        With ``claim`` the job comes back claimed, for the caller to deliver now.
        """
        with self.store.engine.begin() as conn:
            if not move_message(self.store, conn, change):
                return None
            ident = self.insert(conn, job, claim)
        return self._load_claimed(ident) if claim else None

    def claim_due(self, limit: int) -> list[Job]:
        """Claim up to ``limit`` due jobs for this process (after re-queueing dead claims)."""
        now = _now()
        with self.store.engine.begin() as conn:
            conn.execute(
                outbox.update()
                .where(outbox.c.state == DELIVERING, outbox.c.lease_until < now)
                .values(state=QUEUED, lease_until=None, updated_at=now)
            )
            due = conn.execute(
                sa.select(outbox.c.id, outbox.c.attempts)
                .where(outbox.c.state == QUEUED, outbox.c.next_attempt_at <= now)
                .order_by(outbox.c.next_attempt_at)
                .limit(limit)
                .with_for_update(skip_locked=True)  # PostgreSQL; SQLite serialises writers anyway
            ).all()
            claimed = [row.id for row in due if self._claim(conn, row.id, row.attempts, now)]
        return [job for job in (self._load_readable(i) for i in claimed) if job is not None]

    def _load_readable(self, ident: str) -> Job | None:
        """A claimed job, or None if its content cannot be decrypted (key missing, altered):
        never delivered like that, it stays claimed until its lease runs out and is tried
        again then, so it is not lost and the other jobs still go."""
        try:
            return self._load_claimed(ident)
        except CryptoError as exc:
            log.error("outbox job %s cannot be read: %s", ident, exc)
            return None

    def _claim(self, conn: Connection, ident: str, attempts: int, now: datetime) -> bool:
        result = conn.execute(
            outbox.update()
            .where(outbox.c.id == ident, outbox.c.state == QUEUED, outbox.c.attempts == attempts)
            .values(
                state=DELIVERING,
                attempts=attempts + 1,
                lease_until=now + timedelta(seconds=self.settings.lease_s),
                updated_at=now,
            )
        )
        return result.rowcount == 1

    def _load_claimed(self, ident: str) -> Job | None:
        query = (
            sa.select(outbox, messages.c.raw.label("kept_raw"))
            .select_from(outbox.outerjoin(messages, messages.c.id == outbox.c.message))
            .where(outbox.c.id == ident, outbox.c.state == DELIVERING)
        )
        with self.store.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            return None
        keyring = self.store.keyring
        raw = None if row["raw"] is None else keyring.open(bytes(row["raw"]), _raw_slot(ident))
        if raw is None and not str(row["purpose"]).startswith("notice") and row["kept_raw"] is not None:
            # A notice never falls back to the message it is about.
            raw = open_message_raw(keyring, row["message"], row["kept_raw"])
        if raw is None:
            log.error("outbox job %s has nothing to deliver", ident)
            return None
        results = json.loads(row["results"])
        return Job(
            id=row["id"],
            purpose=row["purpose"],
            message=row["message"],
            sender=row["sender"],
            pending=tuple(r for r in json.loads(row["recipients"]) if results[r]["state"] == PENDING),
            body=row["header"].encode("utf-8") + bytes(raw or b""),
            mail_options=json.loads(row["mail_options"]),
            rcpt_options=json.loads(row["rcpt_options"]),
            attempts=row["attempts"],
            created_at=_aware(row["created_at"]),
        )

    def record(self, job: Job, delivery: Delivery) -> JobOutcome:
        """Record one attempt: per-recipient results, then retry, finish or give up."""
        now = _now()
        with self.store.engine.begin() as conn:
            row = conn.execute(sa.select(outbox).where(outbox.c.id == job.id)).mappings().one()
            results: dict[str, dict[str, str]] = json.loads(row["results"])
            for rcpt in job.pending:
                state, reply = _recipient_result(delivery, rcpt)
                results[rcpt] = {"state": state, "reply": reply.line()}
            waiting = [r for r, res in results.items() if res["state"] == PENDING]
            if waiting and now - job.created_at > timedelta(seconds=self.settings.max_age_s):
                for rcpt in waiting:
                    results[rcpt] = {"state": FAILED, "reply": f"gave up after {job.attempts} attempts"}
                waiting = []
            delivered = [r for r, res in results.items() if res["state"] == DELIVERED]
            state = QUEUED if waiting else (DELIVERED if delivered else FAILED)
            values: dict[str, Any] = {
                "state": state,
                "results": json.dumps(results),
                "lease_until": None,
                "updated_at": now,
                "last_reply": delivery.data.line(),
            }
            if state == QUEUED:
                values["next_attempt_at"] = now + timedelta(seconds=self.backoff(job.attempts))
            else:
                # A finished notice may carry a live confirmation link: keep nothing of it.
                values["raw"] = None
            taken = conn.execute(
                outbox.update()
                .where(outbox.c.id == job.id, outbox.c.state == DELIVERING, outbox.c.attempts == job.attempts)
                .values(**values)
            )
            if taken.rowcount != 1:
                log.warning("outbox job %s was taken over while it was being delivered", job.id)
                return JobOutcome(job.id, DELIVERING, [], {}, delivery.data.line())
            refused = {r: res["reply"] for r, res in results.items() if res["state"] == FAILED}
            outcome = JobOutcome(job.id, state, delivered, refused, delivery.data.line())
            if state != QUEUED:
                self._finish(conn, row, outcome)
        return outcome

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt."""
        delay = self.settings.retry_base_s * 2 ** max(attempts - 1, 0)
        return float(min(delay, self.settings.retry_max_s))

    def _finish(self, conn: Connection, row: Any, outcome: JobOutcome) -> None:
        detail = {
            "job": outcome.id,
            "purpose": row["purpose"],
            "delivered": outcome.delivered,
            "refused": outcome.refused,
            "reply": outcome.reply,
        }
        if row["on_done"] and row["message"]:
            on_done = json.loads(row["on_done"])
            target = on_done["delivered"] if outcome.state == DELIVERED else on_done["failed"]
            if outcome.state == FAILED:
                detail["error"] = "next hop did not accept the delivery"
            change = Transition(row["message"], (on_done["claimed"],), target, row["actor"], detail)
            if not move_message(self.store, conn, change):
                log.warning(
                    "message %s left %s before its delivery finished", row["message"], on_done["claimed"]
                )
            return
        kind = "notice" if str(row["purpose"]).startswith("notice") else "delivery"
        action = f"{kind}-sent" if outcome.state == DELIVERED else f"{kind}-failed"
        append_audit(self.store, conn, "gateway", action, row["message"], detail)

    def state(self, ident: str) -> str | None:
        with self.store.engine.connect() as conn:
            value = conn.execute(sa.select(outbox.c.state).where(outbox.c.id == ident)).scalar()
        return str(value) if value is not None else None

    def jobs(self, message: str | None = None) -> list[dict[str, Any]]:
        """Jobs (without bodies), oldest first, for one message or all."""
        cols = [c for c in outbox.c if c.name != "raw"]
        query = sa.select(*cols).order_by(outbox.c.created_at)
        if message is not None:
            query = query.where(outbox.c.message == message)
        with self.store.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings().all()]


def _recipient_result(delivery: Delivery, rcpt: str) -> tuple[str, Reply]:
    """A recipient's fate: refused at RCPT, else whatever DATA got."""
    reply = delivery.recipients.get(rcpt, delivery.data)
    if reply.ok:
        reply = delivery.data
    if reply.ok:
        return DELIVERED, reply
    return (PENDING if reply.transient else FAILED), reply


def move_message(store: Store, conn: Connection, change: Transition) -> bool:
    """Compare-and-set a kept message's status with its audit entry, in ``conn``'s transaction."""
    result = conn.execute(
        messages.update()
        .where(messages.c.id == change.ident, messages.c.status.in_(change.from_statuses))
        .values(status=change.to_status, updated_at=_now())
    )
    if result.rowcount != 1:
        return False
    append_audit(store, conn, change.actor, change.to_status, change.ident, change.detail)
    return True


def append_audit(
    store: Store, conn: Connection, actor: str, action: str, message: str | None, detail: dict[str, Any]
) -> None:
    """Append to the audit chain inside the caller's transaction.

    A status change, the job it queues and their audit entry must commit together;
    the store has no public in-transaction append yet, so this borrows its own.
    """
    store.append_audit(conn, actor, action, message, detail)


async def deliver(outbox_: Outbox, hop: NextHop, job: Job) -> JobOutcome:
    """One attempt at a claimed job: deliver to its pending recipients, record the answers."""
    delivery = await hop.deliver(
        job.sender,
        list(job.pending),
        job.body,
        job.mail_options,
        {r: job.rcpt_options.get(r, []) for r in job.pending},
    )
    outcome = await asyncio.to_thread(outbox_.record, job, delivery)
    log.info(
        json.dumps(
            {"outbox": job.id, "purpose": job.purpose, "message": job.message, "state": outcome.state},
            sort_keys=True,
        )
    )
    return outcome


class OutboxWorker:
    """Claims and delivers due jobs until cancelled; woken early when a job is queued."""

    def __init__(self, outbox_: Outbox, hop: NextHop):
        self.outbox = outbox_
        self.hop = hop
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Something was queued: look now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        settings = self.outbox.settings
        while True:
            try:
                jobs = await asyncio.to_thread(self.outbox.claim_due, settings.concurrency)
            except (StoreError, sa.exc.SQLAlchemyError, OSError) as exc:
                # The store being down must not end the worker: it resumes when the store returns.
                log.error("outbox: cannot claim jobs: %s", exc)
                jobs = []
            if jobs:
                await asyncio.gather(*(self._attempt(job) for job in jobs))
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), settings.poll_interval_s)
            self._wake.clear()

    async def _attempt(self, job: Job) -> None:
        try:
            await deliver(self.outbox, self.hop, job)
        except (StoreError, sa.exc.SQLAlchemyError, OSError) as exc:
            # The lease runs out and the job is tried again; never lost.
            log.error("outbox: could not record job %s: %s", job.id, exc)


def _raw_slot(ident: str) -> Slot:
    return Slot("outbox", "raw", ident)


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
