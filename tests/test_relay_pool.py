"""Reused next-hop connections, over real sockets: a connection is reused only when
safe, one the hop closed or refused RSET on is never reused, and every message
arrives exactly once."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.history import BatchedSenderHistory, sender_domains
from gateway.relay import NextHop
from gateway.store import Store
from tests.support import GatewayProcess, Sink, SinkHandler, free_port, message


@dataclass
class CountingSink(SinkHandler):
    """A sink that counts connections and can misbehave the way a real hop may."""

    connections: int = 0
    close_on_second_mail: bool = False  # answer 421 and hang up on a connection's 2nd MAIL
    drop_on_second_mail: bool = False  # hang up without a word on a connection's 2nd MAIL
    refuse_rset: bool = False
    mails: dict[int, int] = field(default_factory=dict)  # MAIL commands per connection
    servers: list[SMTP] = field(default_factory=list)  # one per connection, to hang up on

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        self.connections += 1
        self.servers.append(server)
        session.host_name = hostname
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        seen = self.mails.get(id(session), 0)
        self.mails[id(session)] = seen + 1
        if seen and (self.close_on_second_mail or self.drop_on_second_mail):
            assert server.transport is not None
            if self.drop_on_second_mail:
                server.transport.close()  # gone before a reply: the client sees the connection drop
            else:
                asyncio.get_running_loop().call_soon(server.transport.close)  # after the 421 is written
            return "421 4.4.2 closing idle connection"
        envelope.mail_from = address
        return "250 2.1.0 Ok"

    async def handle_RSET(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "502 5.5.1 RSET not allowed" if self.refuse_rset else "250 2.0.0 Ok"


@pytest.fixture
def hop_sink() -> Iterator[tuple[CountingSink, int]]:
    handler = CountingSink()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def _raw(n: int) -> bytes:
    return message(f"note {n}", f"Message number {n}.")


async def _deliver_all(hop: NextHop, count: int) -> list[int]:
    codes = []
    for n in range(count):
        delivery = await hop.deliver("alice@agency.gov.au", ["bob@example.com"], _raw(n))
        codes.append(delivery.data.code)
    await hop.aclose()
    return codes


def test_one_connection_carries_many_messages(hop_sink: tuple[CountingSink, int]) -> None:
    sink, port = hop_sink
    hop = NextHop(f"smtp://127.0.0.1:{port}", timeout_s=5, pool_size=2)
    assert asyncio.run(_deliver_all(hop, 5)) == [250] * 5
    assert [m.data for m in sink.messages] == [_raw(n) for n in range(5)]
    assert sink.connections == 1 and hop.connections_opened == 1


def test_without_a_pool_every_message_connects(hop_sink: tuple[CountingSink, int]) -> None:
    sink, port = hop_sink
    hop = NextHop(f"smtp://127.0.0.1:{port}", timeout_s=5)
    assert asyncio.run(_deliver_all(hop, 3)) == [250] * 3
    assert sink.connections == 3 and len(sink.messages) == 3


@pytest.mark.parametrize("how", ["close_on_second_mail", "drop_on_second_mail"])
def test_a_pooled_connection_the_hop_closed_falls_back_to_a_new_one(
    hop_sink: tuple[CountingSink, int], how: str
) -> None:
    sink, port = hop_sink
    setattr(sink, how, True)
    hop = NextHop(f"smtp://127.0.0.1:{port}", timeout_s=5, pool_size=2)
    assert asyncio.run(_deliver_all(hop, 3)) == [250] * 3
    # Each reused connection was refused at MAIL, before any of the message was sent:
    # every message arrives once, each on a fresh connection.
    assert [m.data for m in sink.messages] == [_raw(n) for n in range(3)]
    assert sink.connections == 3 and hop.connections_opened == 3


def test_a_connection_closed_while_idle_is_not_reused(hop_sink: tuple[CountingSink, int]) -> None:
    sink, port = hop_sink

    async def scenario() -> list[int]:
        hop = NextHop(f"smtp://127.0.0.1:{port}", timeout_s=5, pool_size=2)
        first = await hop.deliver("alice@agency.gov.au", ["bob@example.com"], _raw(0))
        assert hop.idle == 1
        # The hop hangs up on the idle connection (its idle timeout, a restart).
        for server in sink.servers:
            assert server.transport is not None
            server.loop.call_soon_threadsafe(server.transport.close)  # the sink's own loop and thread
        await asyncio.sleep(0.2)
        second = await hop.deliver("alice@agency.gov.au", ["bob@example.com"], _raw(1))
        await hop.aclose()
        return [first.data.code, second.data.code]

    assert asyncio.run(scenario()) == [250, 250]
    assert [m.data for m in sink.messages] == [_raw(0), _raw(1)]
    assert sink.connections == 2


def test_an_abandoned_transaction_is_reset_before_reuse(hop_sink: tuple[CountingSink, int]) -> None:
    sink, port = hop_sink

    async def scenario() -> int:
        hop = NextHop(f"smtp://127.0.0.1:{port}", timeout_s=5, pool_size=2)
        transaction = await hop.open("mallory@agency.gov.au", [])
        assert (await transaction.rcpt("eve@example.com", [])).ok
        await transaction.close()  # the client went away before DATA: RSET, then park
        assert hop.idle == 1
        delivery = await hop.deliver("alice@agency.gov.au", ["bob@example.com"], _raw(0))
        await hop.aclose()
        return delivery.data.code

    assert asyncio.run(scenario()) == 250
    assert [(m.sender, m.recipients) for m in sink.messages] == [("alice@agency.gov.au", ["bob@example.com"])]
    assert sink.connections == 1


def test_a_hop_refusing_rset_gets_a_new_connection(hop_sink: tuple[CountingSink, int]) -> None:
    sink, port = hop_sink
    sink.refuse_rset = True

    async def scenario() -> int:
        hop = NextHop(f"smtp://127.0.0.1:{port}", timeout_s=5, pool_size=2)
        transaction = await hop.open("mallory@agency.gov.au", [])
        assert (await transaction.rcpt("eve@example.com", [])).ok
        await transaction.close()
        assert hop.idle == 0  # RSET refused: not reusable, closed
        delivery = await hop.deliver("alice@agency.gov.au", ["bob@example.com"], _raw(0))
        await hop.aclose()
        return delivery.data.code

    assert asyncio.run(scenario()) == 250
    assert [(m.sender, m.recipients) for m in sink.messages] == [("alice@agency.gov.au", ["bob@example.com"])]
    assert sink.connections == 2


def test_idle_connections_are_closed_after_idle_s(hop_sink: tuple[CountingSink, int]) -> None:
    _sink, port = hop_sink

    async def scenario() -> tuple[int, int]:
        hop = NextHop(f"smtp://127.0.0.1:{port}", timeout_s=5, pool_size=2, idle_s=0.2)
        await hop.deliver("alice@agency.gov.au", ["bob@example.com"], _raw(0))
        parked = hop.idle
        await asyncio.sleep(0.5)
        left = hop.idle
        await hop.aclose()
        return parked, left

    assert asyncio.run(scenario()) == (1, 0)


def test_gateway_reuses_its_hop_connection_and_survives_a_hop_restart(
    make_gateway: Callable[..., GatewayProcess],
) -> None:
    port = free_port()
    handler = CountingSink()
    sink = Sink(port)
    sink.handler = handler
    sink.start()
    try:
        gateway = make_gateway(port)
        for n in range(3):
            with smtplib.SMTP("127.0.0.1", gateway.port, timeout=60) as client:
                client.sendmail("alice@agency.gov.au", ["bob@example.com"], _raw(n))
        assert handler.connections == 1  # three client sessions, one next-hop connection
        sink.stop()  # the hop restarts: the pooled connection is gone
        sink.start()
        for n in range(3, 5):
            with smtplib.SMTP("127.0.0.1", gateway.port, timeout=60) as client:
                client.sendmail("alice@agency.gov.au", ["bob@example.com"], _raw(n))
    finally:
        sink.stop()
    bodies = [m.data.split(b"\r\n", 1)[1] for m in handler.messages]
    assert bodies == [_raw(n) for n in range(5)]  # each once, in order
    assert handler.connections == 2


def test_batched_history_counts_every_message_and_remembers_known_pairs(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    store.migrate()
    history = BatchedSenderHistory(store)
    assert history.known("alice@agency.gov.au", {"example.com"}) == frozenset()
    history.record_many(
        [
            ("Alice@agency.gov.au", ["bob@example.com"]),
            ("alice@agency.gov.au", ["carol@Example.com", "dave@partner.gov.au"]),
            ("", ["x@example.com"]),  # the null sender has no history
        ]
    )
    history.record_many([("alice@agency.gov.au", ["bob@example.com"])])
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(sender_domains.c.sender, sender_domains.c.domain, sender_domains.c.messages)
        )
        counts = {(s, d): n for s, d, n in rows}
    assert counts == {("alice@agency.gov.au", "example.com"): 3, ("alice@agency.gov.au", "partner.gov.au"): 1}
    assert history.known("alice@agency.gov.au", {"example.com", "new.org"}) == {"example.com"}
    # Another node's history (written straight to the store) is seen too.
    BatchedSenderHistory(store).record_many([("alice@agency.gov.au", ["zed@new.org"])])
    assert history.known("alice@agency.gov.au", {"example.com", "new.org"}) == {"example.com", "new.org"}
