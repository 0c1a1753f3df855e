"""Postfix (after-queue content_filter) → dlp-gateway → Postfix re-injection → sink."""

from __future__ import annotations

import json
import smtplib
import time
from collections.abc import Callable, Iterator

import pytest

from tests.postfix_support import PostfixInstance
from tests.support import GatewayProcess, Sink, free_port, message

TFN_AND_CARD = "Client tax file number 123 456 782, card 4111 1111 1111 1111 for the refund."


@pytest.fixture
def postfix_chain(
    sink: Sink, make_gateway: Callable[..., GatewayProcess]
) -> Iterator[tuple[PostfixInstance, GatewayProcess]]:
    reinject = free_port()
    postfix = PostfixInstance(gateway_port=0, final_port=sink.port, reinject_port=reinject)
    gateway = make_gateway(reinject)
    postfix.gateway_port = gateway.port
    postfix.start()
    yield postfix, gateway
    postfix.stop()


def _wait_for(condition: Callable[[], bool], postfix: PostfixInstance, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        postfix.flush()
        time.sleep(0.5)
    raise AssertionError(f"timed out; postfix log:\n{postfix.logs()[-4000:]}")


def test_clean_mail_flows_through_postfix_and_back(
    postfix_chain: tuple[PostfixInstance, GatewayProcess], sink: Sink
) -> None:
    postfix, _ = postfix_chain
    raw = message("minutes", "Minutes of Tuesday's meeting are on the shared drive.")
    with smtplib.SMTP("127.0.0.1", postfix.upstream_port, timeout=30) as client:
        client.sendmail("alice@agency.gov.au", ["bob@example.com"], raw)
    _wait_for(lambda: len(sink.messages) == 1, postfix)
    delivered = sink.messages[0]
    assert delivered.recipients == ["bob@example.com"]
    assert b"X-DLP-Decision: pass; id=" in delivered.data
    assert b"Minutes of Tuesday's meeting" in delivered.data
    _wait_for(postfix.queue_is_empty, postfix)


def test_held_mail_is_not_delivered_and_leaves_postfix_queue(
    postfix_chain: tuple[PostfixInstance, GatewayProcess], sink: Sink
) -> None:
    postfix, gateway = postfix_chain
    with smtplib.SMTP("127.0.0.1", postfix.upstream_port, timeout=30) as client:
        client.sendmail("alice@agency.gov.au", ["bob@example.com"], message("refund", TFN_AND_CARD))

    def held() -> bool:
        return bool(gateway.cli("held", "list", "--json").stdout.strip())

    _wait_for(held, postfix)
    _wait_for(postfix.queue_is_empty, postfix)  # the gateway's 250 took it off Postfix's hands
    assert sink.messages == []
    listed = json.loads(gateway.cli("held", "list", "--json").stdout.splitlines()[0])
    assert listed["recipients"] == ["bob@example.com"]
    assert "tax-file-number-external" in listed["rules"]


def test_gateway_down_keeps_mail_queued_in_postfix_until_it_returns(
    postfix_chain: tuple[PostfixInstance, GatewayProcess], sink: Sink
) -> None:
    postfix, gateway = postfix_chain
    gateway.stop()
    with smtplib.SMTP("127.0.0.1", postfix.upstream_port, timeout=30) as client:
        client.sendmail("alice@agency.gov.au", ["bob@example.com"], message("later", "Nothing sensitive."))
    time.sleep(3)
    assert sink.messages == [] and not postfix.queue_is_empty()
    gateway.start()
    _wait_for(lambda: len(sink.messages) == 1, postfix, timeout=90)
