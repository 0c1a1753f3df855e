"""The review queue: held and pending messages, filtered, searched, sorted, paginated.

Status and age are filtered in SQL; rule, marking and recipient domain live in
JSON columns, so they are filtered here over the (small) set of messages awaiting
review.  The queue is bounded by ``MAX_QUEUE`` rows; the page says when it is cut.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from gateway.console.content import mask_with_excerpts
from gateway.model import Finding
from gateway.review import REVIEWABLE
from gateway.store import Keyring, Store, open_message_text
from gateway.store.schema import messages

MAX_QUEUE = 5000
AGES = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "3d": timedelta(days=3), "7d": timedelta(days=7)}
SORTS = ("oldest", "newest", "sender", "subject", "size")


@dataclass(frozen=True)
class QueueFilter:
    """What the reviewer asked for; built from the query string, every field checked."""

    status: str = ""  # "" = held and pending
    rule: str = ""
    sender: str = ""
    domain: str = ""
    marking: str = ""
    age: str = ""
    q: str = ""
    sort: str = "oldest"
    page: int = 1

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> QueueFilter:
        status = query.get("status", "")
        age = query.get("age", "")
        sort = query.get("sort", "oldest")
        try:
            page = max(1, int(query.get("page", "1")))
        except ValueError:
            page = 1
        return cls(
            status=status if status in REVIEWABLE else "",
            rule=query.get("rule", "")[:200],
            sender=query.get("sender", "").strip().lower()[:200],
            domain=query.get("domain", "").strip().lower().lstrip("@")[:200],
            marking=query.get("marking", "")[:64],
            age=age if age in AGES else "",
            q=query.get("q", "").strip().lower()[:200],
            sort=sort if sort in SORTS else "oldest",
            page=page,
        )

    def query_string(self, **changes: object) -> str:
        """This filter as a query string, with some fields changed (for links)."""
        from urllib.parse import urlencode

        values = {**self.__dict__, **changes}
        return urlencode(
            {k: v for k, v in values.items() if v not in ("", None) and not (k == "page" and v == 1)}
        )


@dataclass(frozen=True)
class QueueItem:
    id: str
    status: str
    decision: str
    created_at: datetime
    sender: str
    recipients: list[str]
    held_recipients: list[str]
    rules: list[str]
    subject: str
    size: int
    markings: list[str]
    entities: dict[str, int]


@dataclass
class QueuePage:
    items: list[QueueItem]
    total: int
    page: int
    pages: int
    truncated: bool
    rules: list[str] = field(default_factory=list)  # every rule in the queue, for the filter menu
    markings: list[str] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)


def load_queue(store: Store, flt: QueueFilter, page_size: int, now: datetime | None = None) -> QueuePage:
    """One page of the queue under a filter."""
    now = now or datetime.now(UTC)
    all_items = _reviewable_items(store, flt, now)
    truncated = len(all_items) >= MAX_QUEUE
    rules = sorted({r for i in all_items for r in i.rules})
    markings = sorted({m for i in all_items for m in i.markings})
    domains = sorted({_domain(r) for i in all_items for r in i.recipients})
    chosen = [i for i in all_items if _matches(i, flt)]
    chosen.sort(key=_sort_key(flt.sort), reverse=flt.sort == "newest")
    pages = max(1, -(-len(chosen) // page_size))
    page = min(flt.page, pages)
    start = (page - 1) * page_size
    return QueuePage(
        chosen[start : start + page_size], len(chosen), page, pages, truncated, rules, markings, domains
    )


def _reviewable_items(store: Store, flt: QueueFilter, now: datetime) -> list[QueueItem]:
    cols = [c for c in messages.c if c.name != "raw"]
    statuses = (flt.status,) if flt.status else REVIEWABLE
    query = (
        sa.select(*cols)
        .where(messages.c.status.in_(statuses))
        .order_by(messages.c.created_at)
        .limit(MAX_QUEUE)
    )
    if flt.age:
        query = query.where(messages.c.created_at <= now - AGES[flt.age])
    with store.engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [_item(r, store.keyring) for r in rows]


def _item(row: sa.RowMapping, keyring: Keyring) -> QueueItem:
    findings = [Finding.from_json(f) for f in json.loads(open_message_text(keyring, row, "findings"))]
    per_recipient: dict[str, str] = json.loads(row["per_recipient"])
    recipients: list[str] = json.loads(row["recipients"])
    held = [r for r, a in per_recipient.items() if a not in ("pass", "notify")] or recipients
    entities: dict[str, int] = {}
    for f in findings:
        entities[f.entity_type] = entities.get(f.entity_type, 0) + 1
    created = row["created_at"]
    return QueueItem(
        id=row["id"],
        status=row["status"],
        decision=row["decision"],
        created_at=created if created.tzinfo else created.replace(tzinfo=UTC),
        sender=row["sender"],
        recipients=recipients,
        held_recipients=held,
        rules=[r["name"] for r in json.loads(open_message_text(keyring, row, "rules"))],
        subject=mask_with_excerpts(open_message_text(keyring, row, "subject"), findings),
        size=row["size"],
        markings=sorted({f.attributes["level"] for f in findings if f.attributes.get("level")}),
        entities=entities,
    )


def _matches(item: QueueItem, flt: QueueFilter) -> bool:
    if flt.rule and flt.rule not in item.rules:
        return False
    if flt.sender and flt.sender not in item.sender.lower():
        return False
    if flt.domain and not any(_domain(r) == flt.domain for r in item.recipients):
        return False
    if flt.marking and flt.marking not in item.markings:
        return False
    if flt.q:
        haystack = " ".join([item.id, item.sender, item.subject, *item.recipients, *item.rules]).lower()
        if flt.q not in haystack:
            return False
    return True


def _sort_key(sort: str) -> Callable[[QueueItem], Any]:
    if sort == "sender":
        return lambda i: (i.sender.lower(), i.created_at)
    if sort == "subject":
        return lambda i: (i.subject.lower(), i.created_at)
    if sort == "size":
        return lambda i: (i.size, i.created_at)
    return lambda i: i.created_at


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()
