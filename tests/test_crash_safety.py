"""Crash safety with real processes: the gateway killed with SIGKILL mid-burst, its
PostgreSQL restarted under load, a scanner worker killed mid-message.  In every case
each message ends up delivered or held (never lost), and a retrying client (like an
upstream MTA) only ever sees 2xx or, while something is down, 4xx.

What was sent is compared with what arrived at the sink plus what the store kept,
by Message-ID; a duplicate (the gateway died after the next hop's 250 but before
answering its client) is bounded and carries its own X-DLP-Decision id.
"""

from __future__ import annotations

import contextlib
import email.policy
import os
import random
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway.store import Store
from tests.private_pg import PrivatePostgres
from tests.retry_client import Burst, decision_id_of, make_mail, message_id_of
from tests.support import GatewayProcess, Sink, write_settings
from tests.test_observability import HOLD_ALL, Node, until, value

HOLD_TEXT = "Client tax file number 123 456 782 for the refund."
BURST = 400  # messages in the kill -9 burst (well under a minute on two cores)
PG_BURST = 150
CONCURRENCY = 4


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (Linux /proc)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def scanner_workers(pid: int) -> list[int]:
    """The gateway's scanner worker processes (spawned children, not the resource tracker)."""
    found = []
    for child in children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            found.append(child)
    return found


def sigkill(pid: int) -> None:
    """SIGKILL one process we started (or one of its children), if it is still there."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def kill_hard(gateway: GatewayProcess) -> None:
    """SIGKILL the gateway, then its orphaned workers (as systemd's KillMode=control-group would)."""
    assert gateway.proc is not None
    orphans = children(gateway.proc.pid)
    gateway.kill()
    for pid in orphans:
        sigkill(pid)


def kept_message_ids(store_url: str) -> Counter[str]:
    """Message-IDs of messages the store keeps (held or pending), with multiplicity."""
    store = Store(store_url)
    try:
        kept = store.list_messages(("held", "pending"), limit=10_000)
    finally:
        store.close()
    return Counter(m.message_id.strip("<>") for m in kept)


def delivered_message_ids(sink: Sink) -> Counter[str]:
    return Counter(message_id_of(m.data) for m in sink.messages)


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink().start()
    yield server
    server.stop()


def test_kill_9_during_a_burst_loses_nothing(tmp_path: Path, sink: Sink) -> None:
    config, port = write_settings(tmp_path, sink.port)
    gateway = GatewayProcess(config, port, tmp_path).start()
    # Every third message is held, the rest pass: both the store and the relay path are cut.
    mails = [make_mail(i, HOLD_TEXT if i % 3 == 0 else f"Minutes of meeting {i}.") for i in range(BURST)]
    burst = Burst(port, concurrency=CONCURRENCY, timeout_s=240)
    sender = burst.start(mails)
    kills = 0
    try:
        for threshold in (BURST // 4, BURST // 2, 3 * BURST // 4):
            until(lambda t=threshold: burst.done >= t, timeout=180, what=f"{threshold} messages answered")
            kill_hard(gateway)
            kills += 1
            gateway.start()
        sender.join(timeout=300)
        assert not sender.is_alive(), "the client did not finish"
    finally:
        gateway.stop()
    sent = {m.message_id for m in mails}
    results = {r.message_id: r for r in burst.results}
    assert set(results) == sent
    assert {r.code for r in results.values()} == {250}, Counter(r.code for r in results.values())
    assert sum(len(r.transient) for r in results.values()) > 0, "the kills were never seen by the client"
    delivered = delivered_message_ids(sink)
    kept = kept_message_ids(f"sqlite:///{tmp_path / 'var' / 'store.sqlite3'}")
    assert set(delivered) | set(kept) == sent  # nothing lost, nothing invented
    assert not set(delivered) & set(kept)  # a message is either relayed or held, never both
    duplicates = sum(n - 1 for n in (delivered + kept).values())
    retries = sum(len(r.transient) for r in results.values())
    print(f"\nkill -9 burst: {BURST} sent, {kills} kills, {retries} client retries, {duplicates} duplicates")
    # At most the messages in flight at each kill can have been done twice.
    assert duplicates <= kills * CONCURRENCY, duplicates
    for ident, count in delivered.items():
        if count > 1:  # recognisable: same Message-ID, a different gateway id per copy
            copies = [decision_id_of(m.data) for m in sink.messages if message_id_of(m.data) == ident]
            assert len(set(copies)) == count and all(copies)


def test_postgresql_restart_under_load_gives_4xx_then_recovers_without_restarting_the_gateway(
    tmp_path: Path, sink: Sink
) -> None:
    pg = PrivatePostgres().init()
    pg.start()
    policy = tmp_path / "hold.yaml"
    policy.write_text(HOLD_ALL)
    node = Node(tmp_path, sink.port, store_url=pg.url, policy=str(policy))
    try:
        node.start()
        assert node.process.proc is not None
        pid = node.process.proc.pid
        mails = [make_mail(i, f"Figures for region {i}.", tag="pg") for i in range(PG_BURST)]
        burst = Burst(node.process.port, concurrency=3, timeout_s=240)
        sender = burst.start(mails)
        until(lambda: burst.done >= PG_BURST // 4, timeout=120, what="first messages held")
        pg.stop()
        until(
            lambda: value(node.metrics(), "dlp_smtp_data_replies_total", **{"class": "4xx"}) >= 3,
            timeout=60,
            what="4xx while the store is down",
        )
        assert node.get("/readyz").status_code == 503
        pg.start()
        sender.join(timeout=300)
        assert not sender.is_alive(), "the client did not finish"
        until(lambda: node.get("/readyz").status_code == 200, what="ready again")
        assert node.process.proc is not None and node.process.proc.pid == pid
        assert node.process.proc.poll() is None  # recovered on its own, never restarted
        codes = Counter(r.code for r in burst.results)
        assert codes == {250: PG_BURST}, codes
        assert any(r.transient for r in burst.results)
        assert all(c >= 400 or c == -1 for r in burst.results for c in r.transient)
        kept = kept_message_ids(pg.url)
        assert set(kept) == {m.message_id for m in mails}
        assert sum(kept.values()) - len(kept) <= 3  # only those cut off mid-commit, if any
        assert sink.messages == []
    finally:
        node.process.stop()
        pg.destroy()


def _large_message(rows: int = 60_000) -> bytes:
    """A message whose attachment takes the scanner several seconds: a wide window to kill it in."""
    rng = random.Random(7)
    msg = EmailMessage()
    msg["From"] = "alice@agency.gov.au"
    msg["To"] = "bob@example.com"
    msg["Subject"] = "ledger"
    msg["Message-ID"] = "<ledger@test.agency.gov.au>"
    msg.set_content("The ledger is attached.")
    lines = (f"{i},{rng.randint(10**8, 10**9)},ref {rng.random():.6f}" for i in range(rows))
    msg.add_attachment("\n".join(lines).encode(), maintype="text", subtype="csv", filename="ledger.csv")
    return msg.as_bytes(policy=email.policy.SMTP)


def test_a_scanner_worker_killed_mid_message_costs_that_message_a_451_only(
    tmp_path: Path, sink: Sink
) -> None:
    node = Node(tmp_path, sink.port).start()
    try:
        assert node.process.proc is not None
        gateway_pid = node.process.proc.pid
        [worker] = scanner_workers(gateway_pid)
        answer: list[tuple[int, str]] = []
        sending = threading.Thread(target=lambda: answer.append(node.send(_large_message())), daemon=True)
        sending.start()
        until(lambda: value(node.metrics(), "dlp_messages_in_flight") == 1, what="scan under way")
        sigkill(worker)
        sending.join(timeout=120)
        assert answer and answer[0][0] == 451 and "could not be scanned" in answer[0][1]
        assert value(node.metrics(), "dlp_scan_failures_total", reason="worker_died") == 1
        # The pool was rebuilt: the next message is scanned and relayed.
        code, _ = node.send(make_mail(1, "Lunch at noon?", tag="after").raw)
        assert code == 250
        assert sink.messages[-1].data.startswith(b"X-DLP-Decision: pass; id=")
        [new_worker] = scanner_workers(gateway_pid)
        assert new_worker != worker
        # A worker dying between messages: /readyz says so, the pool is restarted, and
        # the next message is scanned without a 451.
        sigkill(new_worker)
        until(lambda: "scanner pool is broken while idle" in node.process.log(), what="dead worker noticed")
        until(lambda: node.get("/readyz").status_code == 200, what="ready again")
        code, _ = node.send(make_mail(2, "Coffee instead?", tag="after").raw)
        assert code == 250
        assert node.process.proc.poll() is None
    finally:
        node.process.stop()
