"""The confirmation ledger: open a confirmation, resolve it (send or cancel) once, expire it.

Each change is one transaction: the token is spent, the message moves on (with
its audit entry) and, for "send", its delivery is queued in the outbox, all or
nothing.  Wrong, spent or expired tokens change nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gateway.act import decision_header
from gateway.confirm.answers import ANSWERS, Answer
from gateway.confirm.tables import confirmations
from gateway.confirm.tokens import new_token, token_hash
from gateway.outbox import NewJob, OnDone, Outbox, Transition, move_message
from gateway.store.crypto import PLAINTEXT, Keyring, Slot
from gateway.store.schema import messages

PENDING = "pending"
MAX_JUSTIFICATION = 2000


@dataclass(frozen=True)
class Confirmation:
    token_hash: str
    message: str
    sender: str
    subject: str
    expires_at: datetime
    used: bool
    outcome: str


@dataclass(frozen=True)
class Choice:
    """What the sender asked for: ``send`` (with a justification) or ``cancel``."""

    action: str
    via: str  # "link" or "reply"
    justification: str = ""
    from_sender: str | None = None  # replies: who sent the reply (must be the original sender)


@dataclass(frozen=True)
class Expired:
    message: str
    sender: str
    subject: str
    moved_to: str


class _Conflict(Exception):
    """Someone else acted first: roll the whole change back."""

    def __init__(self, answer: Answer):
        self.answer = answer


def open_confirmation(
    conn: Connection,
    message: str,
    sender: str,
    subject: str,
    lifetime_s: float,
    keyring: Keyring = PLAINTEXT,
) -> str:
    """Record a confirmation for ``message`` in the caller's transaction; return the token (kept nowhere)."""
    token = new_token()
    now = _now()
    hashed = token_hash(token)
    conn.execute(
        confirmations.insert().values(
            token_hash=hashed,
            message=message,
            sender=sender,
            subject=keyring.seal_text(subject, subject_slot(hashed)),
            created_at=now,
            expires_at=now + timedelta(seconds=lifetime_s),
            used_at=None,
            outcome=PENDING,
        )
    )
    return token


def subject_slot(hashed_token: str) -> Slot:
    """Where a confirmation's (masked) subject is sealed: its row, named by the token's hash."""
    return Slot("confirmations", "subject", hashed_token)


def find(conn: Connection, token: str, keyring: Keyring = PLAINTEXT) -> Confirmation | None:
    row = conn.execute(
        sa.select(confirmations).where(confirmations.c.token_hash == token_hash(token))
    ).first()
    if row is None:
        return None
    return Confirmation(
        row.token_hash,
        row.message,
        row.sender,
        keyring.open_text(row.subject, subject_slot(row.token_hash)),
        _aware(row.expires_at),
        row.used_at is not None,
        row.outcome,
    )


def usable(found: Confirmation | None, message_status: str | None) -> Answer | None:
    """None if the confirmation can still be acted on, else what to tell the sender."""
    if found is None:
        return ANSWERS["invalid"]
    if found.outcome == "expired" or (found.outcome == PENDING and found.expires_at <= _now()):
        return ANSWERS["expired"]
    if found.used or found.outcome != PENDING or message_status != PENDING:
        return ANSWERS["used"]
    return None


def message_status(conn: Connection, ident: str) -> str | None:
    value = conn.execute(sa.select(messages.c.status).where(messages.c.id == ident)).scalar()
    return str(value) if value is not None else None


def resolve(outbox: Outbox, token: str, choice: Choice, cancel_to: str) -> tuple[Answer, str | None]:
    """Carry out the sender's choice once; return what to tell them and the message id (if known)."""
    try:
        with outbox.store.engine.begin() as conn:
            found = find(conn, token, outbox.store.keyring)
            sender = choice.from_sender
            if found is not None and sender is not None and sender.lower() != found.sender.lower():
                return ANSWERS["not_sender"], None
            refusal = usable(found, message_status(conn, found.message) if found else None)
            if refusal is not None or found is None:
                return refusal or ANSWERS["invalid"], found.message if found else None
            answer = _apply(outbox, conn, found, choice, cancel_to)
            _spend(conn, found, "sent" if choice.action == "send" else "cancelled")
            return answer, found.message
    except _Conflict as conflict:
        return conflict.answer, None


def _apply(outbox: Outbox, conn: Connection, found: Confirmation, choice: Choice, cancel_to: str) -> Answer:
    ident = found.message
    detail: dict[str, Any] = {"via": choice.via}
    if choice.action == "send":
        detail["justification"] = choice.justification[:MAX_JUSTIFICATION]
        row = conn.execute(sa.select(messages).where(messages.c.id == ident)).mappings().one()
        targets = _kept_recipients(row)
        detail["recipients"] = targets
        if not move_message(
            outbox.store, conn, Transition(ident, (PENDING,), "confirmed", found.sender, detail)
        ):
            raise _Conflict(ANSWERS["used"])
        options = dict(zip(json.loads(row["recipients"]), json.loads(row["rcpt_options"]), strict=False))
        job = NewJob(
            purpose="confirmed",
            sender=row["sender"],
            recipients=tuple(targets),
            message=ident,
            header=decision_header("confirmed", ident).decode("ascii"),
            mail_options=tuple(json.loads(row["mail_options"])),
            rcpt_options={r: list(options.get(r, [])) for r in targets},
            on_done=OnDone("confirmed", "released", "held"),
            actor=found.sender,
        )
        outbox.insert(conn, job)
        return ANSWERS["sent"]
    detail["cancelled_by_sender"] = True
    if not move_message(outbox.store, conn, Transition(ident, (PENDING,), cancel_to, found.sender, detail)):
        raise _Conflict(ANSWERS["used"])
    return ANSWERS["cancelled"] if cancel_to == "cancelled" else ANSWERS["kept"]


def _spend(conn: Connection, found: Confirmation, outcome: str) -> None:
    spent = conn.execute(
        confirmations.update()
        .where(confirmations.c.token_hash == found.token_hash, confirmations.c.used_at.is_(None))
        .values(used_at=_now(), outcome=outcome)
    )
    if spent.rowcount != 1:
        raise _Conflict(ANSWERS["used"])


def _kept_recipients(row: Any) -> list[str]:
    """The recipients the policy did not let through at the time (all, if it let none)."""
    per_recipient: dict[str, str] = json.loads(row["per_recipient"])
    kept = [r for r, action in per_recipient.items() if action not in ("pass", "notify")]
    return kept or list(json.loads(row["recipients"]))


def expire_due(outbox: Outbox, to_status: str, lifetime_s: float, limit: int = 100) -> list[Expired]:
    """Expire confirmations whose time is up, moving their messages to ``to_status``."""
    now = _now()
    done: list[Expired] = []
    with outbox.store.engine.connect() as conn:
        due = conn.execute(
            sa.select(confirmations)
            .where(confirmations.c.outcome == PENDING, confirmations.c.expires_at <= now)
            .limit(limit)
        ).all()
    for row in due:
        detail = {
            "reason": "sender did not confirm in time",
            "expired_at": _aware(row.expires_at).isoformat(),
        }
        with outbox.store.engine.begin() as conn:
            spent = conn.execute(
                confirmations.update()
                .where(confirmations.c.token_hash == row.token_hash, confirmations.c.outcome == PENDING)
                .values(outcome="expired")
            )
            if spent.rowcount != 1:
                continue  # another node got there first
            moved = move_message(
                outbox.store, conn, Transition(row.message, (PENDING,), to_status, "gateway", detail)
            )
        if moved:
            subject = outbox.store.keyring.open_text(row.subject, subject_slot(row.token_hash))
            done.append(Expired(row.message, row.sender, subject, to_status))
    _expire_orphans(outbox, to_status, now - timedelta(seconds=lifetime_s), limit)
    return done


def _expire_orphans(outbox: Outbox, to_status: str, before: datetime, limit: int) -> None:
    """Pending messages whose confirmation was never opened (the store failed mid-way) expire too."""
    orphan = (
        sa.select(messages.c.id)
        .where(
            messages.c.status == PENDING,
            messages.c.created_at <= before,
            ~sa.exists().where(confirmations.c.message == messages.c.id),
        )
        .limit(limit)
    )
    with outbox.store.engine.connect() as conn:
        idents = list(conn.execute(orphan).scalars())
    detail = {"reason": "awaiting the sender, but no confirmation was ever opened"}
    for ident in idents:
        with outbox.store.engine.begin() as conn:
            move_message(outbox.store, conn, Transition(ident, (PENDING,), to_status, "gateway", detail))


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
