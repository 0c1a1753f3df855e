"""Two gateway processes on one PostgreSQL database: held mail released from both nodes
at once reaches each recipient exactly once; releases made while the next hop is down
are delivered once when it returns; a 5xx next hop fails the delivery, audited once.

Each `dlp-gateway` CLI run takes seconds to start (it loads the detectors), so only
``CLI_RACED`` of the held messages are raced through both nodes' CLIs; the rest are
raced through the same ``gateway.review.release`` the CLI calls, from two engines
(one per node's settings) in threads.  Set DLP_CLUSTER_MESSAGES to change the total.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.outbox import FAILED, Outbox
from gateway.relay import NextHop
from gateway.review import ReviewError, release
from gateway.settings import OutboxSettings
from gateway.store import Store
from tests.retry_client import Burst, Mail, make_mail, message_id_of
from tests.support import GatewayProcess, Sink, create_pg_database, drop_pg_database, write_settings
from tests.test_observability import HOLD_ALL, until

MESSAGES = int(os.environ.get("DLP_CLUSTER_MESSAGES", "200"))
CLI_RACED = 6
RCPTS = ("bob@example.com", "carol@example.org")
FAST_OUTBOX = {"poll_interval_s": 0.2, "lease_s": 30, "retry_base_s": 0.5, "retry_max_s": 1}


@dataclass
class Cluster:
    url: str
    sink: Sink
    nodes: tuple[GatewayProcess, GatewayProcess]

    def stores(self) -> list[Store]:
        return [Store(self.url), Store(self.url)]  # one engine per node, as their CLIs have

    def statuses(self) -> Counter[str]:
        store = Store(self.url)
        try:
            return Counter(m.status for m in store.list_messages((), limit=10_000))
        finally:
            store.close()

    def held_ids(self) -> dict[str, str]:
        """Message-ID → gateway id of every held message."""
        store = Store(self.url)
        try:
            return {m.message_id.strip("<>"): m.id for m in store.list_messages(("held",), limit=10_000)}
        finally:
            store.close()

    def send(self, count: int, tag: str = "held") -> list[str]:
        """Send ``count`` messages, alternately through each node; return their Message-IDs."""
        batches: list[list[Mail]] = [[], []]
        for i in range(count):
            batches[i % 2].append(make_mail(i, f"Quarterly figures, part {i}.", tag=tag, rcpts=RCPTS))
        bursts = [Burst(node.port, concurrency=3, timeout_s=120) for node in self.nodes]
        threads = [b.start(batch) for b, batch in zip(bursts, batches, strict=True)]
        for thread in threads:
            thread.join(timeout=180)
        for burst in bursts:
            assert burst.codes() == {250: len(burst.results)}
        return [m.message_id for batch in batches for m in batch]

    def deliveries(self) -> Counter[tuple[str, str]]:
        """(Message-ID, recipient) pairs the next hop received, with multiplicity."""
        return Counter((message_id_of(m.data), r) for m in self.sink.messages for r in m.recipients)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    url = create_pg_database()
    policy = tmp_path / "hold.yaml"
    policy.write_text(HOLD_ALL)
    sink = Sink()  # started by each test: some start with the next hop down
    nodes = []
    for name in ("a", "b"):
        workdir = tmp_path / name
        workdir.mkdir()
        config, port = write_settings(
            workdir, sink.port, store_url=url, policy=str(policy), outbox=FAST_OUTBOX
        )
        nodes.append(GatewayProcess(config, port, workdir))
    for node in nodes:
        node.start()
    yield Cluster(url, sink, (nodes[0], nodes[1]))
    for node in nodes:
        node.stop()
    sink.stop()
    drop_pg_database(url)


def _release_in_process(store: Store, hop: NextHop, ident: str, actor: str) -> bool:
    """What `dlp-gateway held release` does, without the CLI's start-up; True if this call won."""
    try:
        # The nodes' outbox settings (the CLI would use the defaults: a 60 s first retry).
        outbox = Outbox(store, OutboxSettings(**FAST_OUTBOX))
        asyncio.run(release(store, hop, ident, actor, outbox=outbox))
    except ReviewError:
        return False
    return True


def test_releases_raced_from_both_nodes_deliver_each_message_once(cluster: Cluster) -> None:
    cluster.sink.start()
    sent = cluster.send(count=MESSAGES)
    held = cluster.held_ids()
    assert set(held) == set(sent) and cluster.sink.messages == []
    idents = [held[m] for m in sent]
    by_cli, in_process = idents[:CLI_RACED], idents[CLI_RACED:]
    a, b = cluster.nodes
    with ThreadPoolExecutor(6) as pool:
        cli_runs = list(
            pool.map(
                lambda job: job[0].cli("held", "release", job[1]), [(n, i) for i in by_cli for n in (a, b)]
            )
        )
    for ident, pair in zip(by_cli, zip(cli_runs[::2], cli_runs[1::2], strict=True), strict=True):
        codes = sorted(run.returncode for run in pair)
        assert codes == [0, 1], [(r.returncode, r.stdout, r.stderr) for r in pair]
        loser = next(r for r in pair if r.returncode == 1)
        assert ident in loser.stderr and "traceback" not in loser.stderr.lower()
    stores = cluster.stores()
    hop = NextHop(f"smtp://127.0.0.1:{cluster.sink.port}", timeout_s=10)
    try:
        jobs = [(stores[n], hop, ident, f"node-{n}") for ident in in_process for n in (0, 1)]
        with ThreadPoolExecutor(8) as pool:
            won = list(pool.map(lambda job: _release_in_process(*job), jobs))
    finally:
        for store in stores:
            store.close()
    assert sum(won) == len(in_process)
    expected = {(m, r) for m in sent for r in RCPTS}
    got = cluster.deliveries()
    assert set(got) == expected
    assert set(got.values()) == {1}, [pair for pair, n in got.items() if n > 1][:5]
    assert cluster.statuses() == {"released": MESSAGES}
    verified = a.cli("audit", "verify")
    assert verified.returncode == 0, verified.stdout


def test_next_hop_down_during_releases_then_delivered_once_and_a_5xx_fails_audited(
    cluster: Cluster,
) -> None:
    count = 20
    sent = cluster.send(count=count, tag="deferred")  # held while the next hop is down
    refused_raw = make_mail(
        0, "For a mailbox that does not exist.", tag="refused", rcpts=("gone@example.net",)
    )
    refused_burst = Burst(cluster.nodes[0].port, concurrency=1, timeout_s=60)
    refused_burst.run([refused_raw])
    held = cluster.held_ids()
    assert set(held) == {*sent, refused_raw.message_id}
    stores = cluster.stores()
    hop = NextHop(f"smtp://127.0.0.1:{cluster.sink.port}", timeout_s=5)
    try:
        jobs = [(stores[n], hop, ident, f"node-{n}") for ident in held.values() for n in (0, 1)]
        with ThreadPoolExecutor(8) as pool:
            won = list(pool.map(lambda job: _release_in_process(*job), jobs))
    finally:
        for store in stores:
            store.close()
    assert not any(won)  # every release deferred: queued in the outbox, none delivered yet
    assert cluster.statuses() == {"releasing": count + 1}
    cluster.sink.handler.refuse["gone@example.net"] = "550 5.1.1 No such mailbox"
    cluster.sink.start()  # the next hop is back: both nodes' outbox workers deliver
    until(lambda: cluster.statuses() == {"released": count, "held": 1}, timeout=120, what="outbox drained")
    got = cluster.deliveries()
    assert set(got) == {(m, r) for m in sent for r in RCPTS}
    assert set(got.values()) == {1}
    store = Store(cluster.url)
    try:
        refused_id = held[refused_raw.message_id]
        [job] = Outbox(store).jobs(refused_id)
        assert job["state"] == FAILED
        assert "550" in json.loads(job["results"])["gone@example.net"]["reply"]
        reply = json.loads(job["results"])["gone@example.net"]["reply"]
        back = [e for e in store.audit_trail(refused_id) if e.action == "held" and e.detail.get("error")]
        assert len(back) == 1 and back[0].detail["refused"] == {"gone@example.net": reply}
    finally:
        store.close()
    assert cluster.nodes[0].cli("audit", "verify").returncode == 0
