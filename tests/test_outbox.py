"""The outbox against a real SMTP sink, on SQLite and on PostgreSQL: delivered once,
retried on 4xx and on a down next hop, failed and audited on 5xx, taken over after a
dead claimer's lease, never claimed twice; and releases go through it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from gateway.model import Action, Decision, Envelope, ScanResult
from gateway.outbox import DELIVERED, DELIVERING, FAILED, QUEUED, NewJob, Outbox, OutboxWorker
from gateway.relay import NextHop
from gateway.review import ReviewError, release
from gateway.settings import OutboxSettings
from gateway.store import Store
from tests.confirm.databases import postgres_url  # noqa: F401  (fixture)
from tests.support import Sink, free_port, message

FAST = OutboxSettings(poll_interval_s=0.1, lease_s=30, retry_base_s=0.3, retry_max_s=1, max_age_s=60)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    store = Store(url)
    store.migrate()
    yield store
    if request.param == "postgresql":
        with store.engine.begin() as conn:  # the database is shared by the session: leave it empty
            for table in ("outbox", "audit", "messages"):
                conn.exec_driver_sql(f"DELETE FROM {table}")
    store.close()


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink().start()
    yield server
    server.stop()


@pytest.fixture
async def worker_for() -> AsyncIterator[Callable[[Outbox, NextHop], OutboxWorker]]:
    tasks: list[asyncio.Task[None]] = []

    def start(outbox: Outbox, hop: NextHop) -> OutboxWorker:
        worker = OutboxWorker(outbox, hop)
        tasks.append(asyncio.create_task(worker.run()))
        return worker

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def until(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def hop(port: int) -> NextHop:
    return NextHop(f"smtp://127.0.0.1:{port}", timeout_s=5)


def notice_job(*recipients: str, raw: bytes = b"") -> NewJob:
    body = raw or message("notice", "Please take care with this message.", sender="dlp@agency.gov.au")
    return NewJob(purpose="notice:test", sender="dlp@agency.gov.au", recipients=recipients, raw=body)


def job_row(outbox: Outbox, ident: str) -> dict[str, object]:
    return next(j for j in outbox.jobs() if j["id"] == ident)


def keep_held(store: Store, raw: bytes, recipients: tuple[str, ...]) -> str:
    envelope = Envelope("alice@agency.gov.au", recipients, (), tuple(() for _ in recipients))
    scan = ScanResult([], [], [], "refund", "<1@agency.gov.au>", {}, len(raw))
    decision = Decision(dict.fromkeys(recipients, Action.HOLD), [])
    return store.keep("held", raw, envelope, scan, decision)


async def test_a_queued_job_is_delivered_exactly_once(store: Store, sink: Sink, worker_for) -> None:
    outbox = Outbox(store, FAST)
    ident = outbox.add(notice_job("alice@agency.gov.au"))
    worker_for(outbox, hop(sink.port))
    await until(lambda: outbox.state(ident) == DELIVERED)
    await asyncio.sleep(0.5)  # several more polls: nothing is sent again
    assert [m.recipients for m in sink.messages] == [["alice@agency.gov.au"]]
    assert sink.messages[0].sender == "dlp@agency.gov.au"
    row = job_row(outbox, ident)
    assert row["attempts"] == 1
    assert json.loads(str(row["results"]))["alice@agency.gov.au"]["state"] == DELIVERED


async def test_a_deferred_recipient_is_retried_with_backoff(store: Store, sink: Sink, worker_for) -> None:
    sink.handler.refuse["bob@example.com"] = "450 4.2.1 Mailbox busy"
    outbox = Outbox(store, FAST)
    ident = outbox.add(notice_job("alice@agency.gov.au", "bob@example.com"))
    worker_for(outbox, hop(sink.port))
    await until(lambda: len(sink.messages) == 1)
    row = job_row(outbox, ident)
    assert row["state"] == QUEUED and row["attempts"] == 1
    results = json.loads(str(row["results"]))
    assert results["alice@agency.gov.au"]["state"] == DELIVERED
    assert results["bob@example.com"]["state"] == "pending" and "450" in results["bob@example.com"]["reply"]
    del sink.handler.refuse["bob@example.com"]
    await until(lambda: outbox.state(ident) == DELIVERED)
    # The retry went to the deferred recipient only: each got it once.
    assert [m.recipients for m in sink.messages] == [["alice@agency.gov.au"], ["bob@example.com"]]
    assert outbox.backoff(1) == pytest.approx(0.3) and outbox.backoff(2) == pytest.approx(0.6)
    assert outbox.backoff(10) == pytest.approx(1.0)


async def test_a_down_next_hop_is_retried_until_it_comes_back(store: Store, worker_for) -> None:
    port = free_port()
    outbox = Outbox(store, FAST)
    ident = outbox.add(notice_job("alice@agency.gov.au"))
    worker_for(outbox, hop(port))
    await until(lambda: int(job_row(outbox, ident)["attempts"]) >= 2)  # type: ignore[call-overload]
    assert outbox.state(ident) in (QUEUED, DELIVERING)  # retrying, not given up
    late = Sink(port).start()
    try:
        await until(lambda: outbox.state(ident) == DELIVERED)
        assert len(late.messages) == 1
    finally:
        late.stop()


async def test_a_refused_delivery_fails_for_good_and_is_audited(store: Store, sink: Sink, worker_for) -> None:
    sink.handler.refuse["nobody@example.com"] = "550 5.1.1 User unknown"
    outbox = Outbox(store, FAST)
    ident = outbox.add(notice_job("nobody@example.com"))
    worker_for(outbox, hop(sink.port))
    await until(lambda: outbox.state(ident) == FAILED)
    await asyncio.sleep(0.5)
    assert job_row(outbox, ident)["attempts"] == 1  # never retried
    entries = [e for e in store.audit_trail() if e.action == "notice-failed"]
    assert len(entries) == 1
    assert entries[0].detail["refused"] == {"nobody@example.com": "550 5.1.1 User unknown"}
    assert sink.messages == []


async def test_a_job_whose_claimer_died_is_taken_over_after_the_lease(
    store: Store, sink: Sink, worker_for
) -> None:
    dying = Outbox(store, OutboxSettings(lease_s=1.0))
    ident = dying.add(notice_job("alice@agency.gov.au"))
    claimed = dying.claim_due(10)  # claimed, then the process "dies" without delivering
    assert [j.id for j in claimed] == [ident]
    survivor = Outbox(store, FAST)
    assert survivor.claim_due(10) == []  # the lease still holds
    worker_for(survivor, hop(sink.port))
    await until(lambda: survivor.state(ident) == DELIVERED)
    assert len(sink.messages) == 1
    assert job_row(survivor, ident)["attempts"] == 2


def test_two_claimers_never_get_the_same_job(store: Store) -> None:
    outbox = Outbox(store, FAST)
    idents = {outbox.add(notice_job(f"user{i}@agency.gov.au")) for i in range(30)}
    got: list[list[str]] = [[], []]
    start = threading.Barrier(2)

    def claim(slot: int) -> None:
        mine = Outbox(store, FAST)
        start.wait()
        while True:
            jobs = mine.claim_due(3)
            if not jobs:
                return
            got[slot].extend(j.id for j in jobs)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    claimed = got[0] + got[1]
    assert sorted(claimed) == sorted(idents)  # every job once, none twice


async def test_release_is_marked_released_only_after_the_next_hops_250(store: Store, sink: Sink) -> None:
    raw = message("refund", "Held for a reason.")
    ident = keep_held(store, raw, ("bob@example.com",))
    result = await release(store, hop(sink.port), ident, "reviewer1", outbox=Outbox(store, FAST))
    assert result.delivered == ["bob@example.com"]
    assert [m.data for m in sink.messages] == [f"X-DLP-Decision: released; id={ident}\r\n".encode() + raw]
    message_now = store.get(ident)
    assert message_now is not None and message_now.status == "released"
    actions = [(e.actor, e.action) for e in store.audit_trail(ident)]
    assert actions == [("gateway", "held"), ("reviewer1", "releasing"), ("reviewer1", "released")]
    with pytest.raises(ReviewError, match="not awaiting review"):
        await release(store, hop(sink.port), ident, "reviewer2")
    assert len(sink.messages) == 1
    assert store.verify_audit() == []


async def test_a_deferred_release_is_queued_and_finished_by_the_worker(
    store: Store, sink: Sink, worker_for
) -> None:
    raw = message("refund", "Held for a reason.")
    ident = keep_held(store, raw, ("bob@example.com",))
    sink.handler.refuse["bob@example.com"] = "451 4.3.0 Try later"
    outbox = Outbox(store, FAST)
    with pytest.raises(ReviewError, match="queued, the gateway will retry"):
        await release(store, hop(sink.port), ident, "reviewer1", outbox=outbox)
    kept = store.get(ident)
    assert kept is not None and kept.status == "releasing"  # not released: no 250 yet
    del sink.handler.refuse["bob@example.com"]
    worker_for(outbox, hop(sink.port))
    await until(lambda: (store.get(ident) or kept).status == "released")
    assert len(sink.messages) == 1


async def test_a_refused_release_goes_back_to_held(store: Store, sink: Sink) -> None:
    ident = keep_held(store, message("refund", "Held."), ("nobody@example.com",))
    sink.handler.refuse["nobody@example.com"] = "550 5.1.1 User unknown"
    with pytest.raises(ReviewError, match="did not accept"):
        await release(store, hop(sink.port), ident, "reviewer1", outbox=Outbox(store, FAST))
    kept = store.get(ident)
    assert kept is not None and kept.status == "held"
    assert store.audit_trail(ident)[-1].detail["refused"] == {"nobody@example.com": "550 5.1.1 User unknown"}
