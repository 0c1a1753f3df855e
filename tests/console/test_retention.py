"""Retention: overdue held mail expires by the configured action; finished mail is purged later."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.relay import NextHop
from gateway.retention import apply_retention
from gateway.scan import Scanner
from gateway.settings import RetentionSettings
from gateway.store import Store
from gateway.store.schema import messages
from tests.console.conftest import hold, mail
from tests.support import Sink


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    store.migrate()
    return store


def _age(store: Store, ident: str, days: float, column: str = "created_at") -> None:
    with store.engine.begin() as conn:
        conn.execute(
            messages.update()
            .where(messages.c.id == ident)
            .values({column: datetime.now(UTC) - timedelta(days=days)})
        )


def test_old_held_mail_is_rejected_new_mail_kept_and_finished_mail_purged(
    store: Store, scanner: Scanner
) -> None:
    old, fresh, pending = (hold(store, scanner, mail(s, "TFN 123 456 782")) for s in ("old", "fresh", "p"))
    _age(store, old, 20)
    _age(store, pending, 20)
    with store.engine.begin() as conn:  # awaiting its sender: the confirm feature expires those
        conn.execute(messages.update().where(messages.c.id == pending).values(status="pending"))
    hop = NextHop("smtp://127.0.0.1:9", 1, "test")
    settings = RetentionSettings(expire_after_days=14, expire_action="reject", purge_after_days=30)
    dry = asyncio.run(apply_retention(store, hop, settings, dry_run=True))
    assert dry.expired == [old] and store.get(old) and store.get(old).status == "held"  # type: ignore[union-attr]
    report = asyncio.run(apply_retention(store, hop, settings))
    assert report.expired == [old] and report.purged == []
    assert store.get(old).status == "rejected"  # type: ignore[union-attr]
    assert store.get(fresh).status == "held" and store.get(pending).status == "pending"  # type: ignore[union-attr]
    last = store.audit_trail(old)[-1]
    assert last.actor == "retention" and "expired" in last.detail["reason"]
    _age(store, old, 31, "updated_at")
    report = asyncio.run(apply_retention(store, hop, settings))
    assert report.purged == [old] and store.get(old) is None
    assert [e.action for e in store.audit_trail(old)] == ["held", "rejected", "purged"]
    assert store.verify_audit() == []


def test_expiry_by_release_delivers_to_the_next_hop(store: Store, scanner: Scanner, sink: Sink) -> None:
    ident = hold(store, scanner, mail("old", "TFN 123 456 782"))
    _age(store, ident, 3)
    hop = NextHop(f"smtp://127.0.0.1:{sink.port}", 10, "test")
    report = asyncio.run(
        apply_retention(store, hop, RetentionSettings(expire_after_days=2, expire_action="release"))
    )
    assert report.expired == [ident]
    assert [m.recipients for m in sink.messages] == [["bob@example.com"]]
    assert store.get(ident).status == "released"  # type: ignore[union-attr]
