"""What reviewers do around a held message besides release and reject: notes,
assignment, four-eyes approval, sender notices, and the rules on who may release.

Release and reject themselves go through ``gateway.review`` (the CLI uses the
same functions); this module only decides whether a given reviewer may.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parseaddr

import sqlalchemy as sa

from detectors.markings import Level
from gateway.accounts import User
from gateway.console.tables import approvals, assignments, notes, sender_notices
from gateway.settings import ConsoleSettings
from gateway.store import Store, StoredMessage
from gateway.store.crypto import Slot


@dataclass(frozen=True)
class Note:
    at: datetime
    author: str
    text: str


@dataclass(frozen=True)
class Approval:
    approver: str
    at: datetime
    reason: str


@dataclass(frozen=True)
class Assignment:
    assignee: str
    assigned_by: str
    at: datetime


@dataclass(frozen=True)
class Casework:
    """Everything recorded about one message besides its status."""

    notes: list[Note]
    assignment: Assignment | None
    approval: Approval | None
    notice_requested: bool


def load(store: Store, ident: str) -> Casework:
    """Notes, assignment, approval and notice wishes for a message."""
    with store.engine.connect() as conn:
        note_rows = conn.execute(
            notes.select().where(notes.c.message == ident).order_by(notes.c.id)
        ).mappings()
        found_notes = [
            Note(_aware(r["at"]), r["author"], store.keyring.open_text(r["text"], _note_slot(r["id"])))
            for r in note_rows
        ]
        a = conn.execute(assignments.select().where(assignments.c.message == ident)).mappings().first()
        p = conn.execute(approvals.select().where(approvals.c.message == ident)).mappings().first()
        n = conn.execute(sa.select(sa.func.count()).where(sender_notices.c.message == ident)).scalar()
    return Casework(
        notes=found_notes,
        assignment=Assignment(a["assignee"], a["assigned_by"], _aware(a["at"])) if a else None,
        approval=Approval(p["approver"], _aware(p["at"]), p["reason"]) if p else None,
        notice_requested=bool(n),
    )


def assignees(store: Store, idents: list[str]) -> dict[str, str]:
    """Who each of these messages is assigned to (only assigned ones appear)."""
    if not idents:
        return {}
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(assignments.c.message, assignments.c.assignee).where(assignments.c.message.in_(idents))
        ).all()
    return {m: a for m, a in rows}


def add_note(store: Store, ident: str, author: str, text: str) -> None:
    """Append a note; the audit entry records that a note was added and its length, not its text,
    since reviewers sometimes quote the message."""
    text = text.strip()
    if not text:
        raise CaseworkError("a note needs some text")
    with store.engine.begin() as conn:
        # The row id is bound into the sealed text, so the row comes first (with no text in it).
        inserted = conn.execute(notes.insert().values(message=ident, at=_now(), author=author, text=""))
        assert inserted.inserted_primary_key is not None
        note_id = int(inserted.inserted_primary_key[0])
        sealed = store.keyring.seal_text(text[:4000], _note_slot(note_id))
        conn.execute(notes.update().where(notes.c.id == note_id).values(text=sealed))
    store.record(author, "note", ident, {"chars": len(text)})


def _note_slot(note_id: int) -> Slot:
    return Slot("message_notes", "text", str(note_id))


def assign(store: Store, ident: str, assignee: str, actor: str) -> None:
    """Assign (or reassign) a message to a reviewer."""
    with store.engine.begin() as conn:
        conn.execute(assignments.delete().where(assignments.c.message == ident))
        conn.execute(
            assignments.insert().values(message=ident, assignee=assignee, assigned_by=actor, at=_now())
        )
    store.record(actor, "assigned", ident, {"assignee": assignee})


def approve(store: Store, ident: str, approver: str, reason: str) -> None:
    """Record the first of two approvals a four-eyes message needs."""
    with store.engine.begin() as conn:
        if conn.execute(approvals.select().where(approvals.c.message == ident)).first():
            raise CaseworkError("this message already has its first approval")
        conn.execute(approvals.insert().values(message=ident, approver=approver, at=_now(), reason=reason))
    store.record(approver, "approved", ident, {"reason": reason, "four_eyes": True})


def request_notice(store: Store, ident: str, kind: str, reason: str, actor: str) -> None:
    """Queue a notice to the sender (sent by the notice sender, not here)."""
    with store.engine.begin() as conn:
        conn.execute(
            sender_notices.insert().values(
                message=ident, kind=kind, reason=reason, requested_by=actor, requested_at=_now(), sent_at=None
            )
        )


class CaseworkError(Exception):
    """A reviewer action that the rules do not allow; the message says why."""


def needs_four_eyes(message: StoredMessage, console: ConsoleSettings) -> bool:
    """Whether releasing this message takes two reviewers (marking level or named rules)."""
    if console.four_eyes_rules and {r["name"] for r in message.rules} & set(console.four_eyes_rules):
        return True
    threshold = Level.from_label(console.four_eyes_marking) if console.four_eyes_marking else None
    if threshold is None:
        return False
    for finding in message.findings:
        if finding.entity_type != "PROTECTIVE_MARKING":
            continue
        level = Level.from_label(finding.attributes.get("level", ""))
        if level is not None and level >= threshold:
            return True
    return False


def is_own_message(user: User, message: StoredMessage, internal_domains: tuple[str, ...]) -> bool:
    """Whether the reviewer sent this message (by e-mail address, or by username at an
    internal domain), for separation of duties."""
    sender = parseaddr(message.sender)[1].lower() or message.sender.lower()
    if user.email and sender == user.email.lower():
        return True
    if sender == user.username:
        return True
    local, _, domain = sender.rpartition("@")
    return bool(local) and local == user.username and domain in {d.lower() for d in internal_domains}


def release_refusal(
    user: User,
    message: StoredMessage,
    console: ConsoleSettings,
    internal_domains: tuple[str, ...],
    approval: Approval | None,
) -> str:
    """Why this user may not release this message now ("" if they may)."""
    if console.separation_of_duties and is_own_message(user, message, internal_domains):
        return "you sent this message; another reviewer must release it (separation of duties)"
    if needs_four_eyes(message, console):
        if approval is None:
            return "this message needs two reviewers: approve it first, then another reviewer releases it"
        if approval.approver == user.username:
            return "you gave the first approval; a different reviewer must release it (four eyes)"
    return ""


def approval_refusal(
    user: User, message: StoredMessage, console: ConsoleSettings, internal_domains: tuple[str, ...]
) -> str:
    """Why this user may not give the first approval ("" if they may)."""
    if not needs_four_eyes(message, console):
        return "this message does not need a second reviewer"
    if console.separation_of_duties and is_own_message(user, message, internal_domains):
        return "you sent this message; another reviewer must approve it (separation of duties)"
    return ""


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
