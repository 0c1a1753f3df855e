"""End to end over real sockets: smtplib → `dlp-gateway run` → aiosmtpd sink."""

from __future__ import annotations

import json
import smtplib
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import GatewayProcess, Sink, message

TFN_AND_CARD = "Client tax file number 123 456 782, card 4111 1111 1111 1111 for the refund."


def send(
    port: int, raw: bytes, sender: str = "alice@agency.gov.au", rcpts: tuple[str, ...] = ("bob@example.com",)
):
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        return client.sendmail(sender, list(rcpts), raw)


def test_clean_message_arrives_unchanged_but_for_the_decision_header(
    sink: Sink, make_gateway: Callable[..., GatewayProcess]
) -> None:
    gateway = make_gateway(sink.port)
    raw = message("lunch", "See you at noon by the river.")
    send(gateway.port, raw)
    assert len(sink.messages) == 1
    got = sink.messages[0]
    assert got.sender == "alice@agency.gov.au" and got.recipients == ["bob@example.com"]
    first_line, rest = got.data.split(b"\r\n", 1)
    assert first_line.startswith(b"X-DLP-Decision: pass; id=")
    assert rest == raw


def test_tfn_and_card_are_held_not_delivered(sink: Sink, make_gateway: Callable[..., GatewayProcess]) -> None:
    gateway = make_gateway(sink.port)
    with smtplib.SMTP("127.0.0.1", gateway.port, timeout=60) as client:
        client.ehlo()
        client.mail("alice@agency.gov.au")
        client.rcpt("bob@example.com")
        code, text = client.data(message("refund", TFN_AND_CARD))
    assert code == 250 and b"Held for review" in text
    assert sink.messages == []
    listed = [json.loads(line) for line in gateway.cli("held", "list", "--json").stdout.splitlines()]
    assert len(listed) == 1 and listed[0]["status"] == "held"
    assert {"tax-file-number-external", "payment-card-external"} <= set(listed[0]["rules"])
    ident = listed[0]["id"]
    assert ident.encode() in text
    shown = gateway.cli("held", "show", ident).stdout
    assert "••• ••• 782" in shown and "123 456 782" not in shown
    assert "123 456 782" not in gateway.log()


def test_internal_recipient_gets_it_while_external_is_held(
    sink: Sink, make_gateway: Callable[..., GatewayProcess]
) -> None:
    gateway = make_gateway(sink.port)
    rcpts = ("carol@agency.gov.au", "bob@example.com")
    with smtplib.SMTP("127.0.0.1", gateway.port, timeout=60) as client:
        client.ehlo()
        client.mail("alice@agency.gov.au")
        for rcpt in rcpts:
            client.rcpt(rcpt)
        code, text = client.data(message("refund", TFN_AND_CARD))
    assert code == 250 and b"held 1 for review" in text
    assert [m.recipients for m in sink.messages] == [["carol@agency.gov.au"]]


def test_reject_rule_gives_550_with_its_message(
    tmp_path: Path, sink: Sink, make_gateway: Callable[..., GatewayProcess]
) -> None:
    policy = tmp_path / "reject.yaml"
    policy.write_text(
        "rules:\n"
        "  - name: no-cards\n"
        "    when: {findings: {entities: [CREDIT_CARD], min_score: 0.5}}\n"
        "    action: reject\n"
        "    message: Card numbers may not be emailed\n"
    )
    gateway = make_gateway(sink.port, policy=str(policy))
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(gateway.port, message("card", "Card 4111 1111 1111 1111 please"))
    assert refused.value.smtp_code == 550
    assert b"5.7.1 Card numbers may not be emailed" in refused.value.smtp_error
    assert sink.messages == []


def test_next_hop_down_gives_451_then_retry_delivers_once(
    make_gateway: Callable[..., GatewayProcess],
) -> None:
    sink = Sink()  # not started: the next hop is down
    gateway = make_gateway(sink.port)
    raw = message("report", "Quarterly figures attached in the body.")
    with pytest.raises(smtplib.SMTPDataError) as deferred:
        send(gateway.port, raw)
    assert deferred.value.smtp_code == 451
    sink.start()
    try:
        send(gateway.port, raw)  # the upstream MTA's retry
        assert len(sink.messages) == 1
        assert sink.messages[0].data.endswith(raw)
    finally:
        sink.stop()


def test_next_hop_recipient_replies_are_mirrored(
    sink: Sink, make_gateway: Callable[..., GatewayProcess]
) -> None:
    sink.handler.refuse["nobody@example.com"] = "550 5.1.1 <nobody@example.com>: User unknown"
    sink.handler.refuse["later@example.com"] = "450 4.2.1 Mailbox busy"
    gateway = make_gateway(sink.port)
    with smtplib.SMTP("127.0.0.1", gateway.port, timeout=60) as client:
        client.ehlo()
        client.mail("alice@agency.gov.au")
        assert client.rcpt("bob@example.com")[0] == 250
        code, text = client.rcpt("nobody@example.com")
        assert (code, b"User unknown" in text) == (550, True)
        assert client.rcpt("later@example.com")[0] == 450
        assert client.data(message("hello", "Just saying hello."))[0] == 250
    assert [m.recipients for m in sink.messages] == [["bob@example.com"]]


def test_held_message_survives_restart_and_is_released_by_cli(
    sink: Sink, make_gateway: Callable[..., GatewayProcess]
) -> None:
    gateway = make_gateway(sink.port)
    raw = message("refund", TFN_AND_CARD)
    send(gateway.port, raw)
    gateway.kill()  # no clean shutdown: the 250 must already have been durable
    gateway.start()
    ident = json.loads(gateway.cli("held", "list", "--json").stdout.splitlines()[0])["id"]
    result = gateway.cli("held", "release", ident, "--actor", "reviewer1")
    assert result.returncode == 0, result.stderr
    assert len(sink.messages) == 1
    assert sink.messages[0].data == f"X-DLP-Decision: released; id={ident}\r\n".encode() + raw
    again = gateway.cli("held", "release", ident)
    assert again.returncode == 1 and "not awaiting review" in again.stderr
    assert len(sink.messages) == 1
    trail = gateway.cli("held", "show", ident).stdout
    assert "reviewer1 released" in trail
    assert gateway.cli("audit", "verify").returncode == 0


def test_reject_from_cli_never_delivers(sink: Sink, make_gateway: Callable[..., GatewayProcess]) -> None:
    gateway = make_gateway(sink.port)
    send(gateway.port, message("refund", TFN_AND_CARD))
    ident = json.loads(gateway.cli("held", "list", "--json").stdout.splitlines()[0])["id"]
    assert gateway.cli("held", "reject", ident, "--reason", "not authorised").returncode == 0
    assert gateway.cli("held", "release", ident).returncode == 1
    assert sink.messages == []


def test_client_outside_allowed_networks_is_refused(
    sink: Sink, make_gateway: Callable[..., GatewayProcess]
) -> None:
    gateway = make_gateway(sink.port, smtp={"allowed_networks": ["192.0.2.0/24"]})
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        smtplib.SMTP("127.0.0.1", gateway.port, timeout=10)
    assert refused.value.smtp_code == 554


def test_oversized_message_gets_552(sink: Sink, make_gateway: Callable[..., GatewayProcess]) -> None:
    gateway = make_gateway(sink.port, smtp={"max_message_bytes": 10_000})
    with smtplib.SMTP("127.0.0.1", gateway.port, timeout=60) as client:
        client.ehlo()
        assert client.has_extn("size") and client.esmtp_features["size"] == "10000"
        for extension in ("8bitmime", "smtputf8", "pipelining"):
            assert client.has_extn(extension), extension
        client.mail("alice@agency.gov.au")
        client.rcpt("bob@example.com")
        code, _ = client.data(message("big", ("x" * 70 + "\r\n") * 300))
    assert code == 552
    assert sink.messages == []


def test_utf8_envelope_and_8bit_body_pass_through(
    sink: Sink, make_gateway: Callable[..., GatewayProcess]
) -> None:
    gateway = make_gateway(sink.port)
    raw = message("café", "Crème brûlée at noon — ça va?")
    with smtplib.SMTP("127.0.0.1", gateway.port, timeout=60) as client:
        client.sendmail(
            "zoë@agency.gov.au", ["josé@example.com"], raw, mail_options=["SMTPUTF8", "BODY=8BITMIME"]
        )
    assert sink.messages[0].recipients == ["josé@example.com"]
    assert sink.messages[0].data.endswith(raw)


def test_many_sessions_at_once_are_all_answered(
    sink: Sink, make_gateway: Callable[..., GatewayProcess]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    gateway = make_gateway(sink.port, smtp={"max_sessions": 4})

    def attempt(i: int) -> int:
        try:
            send(gateway.port, message(f"note {i}", "Nothing sensitive here."))
            return 250
        except smtplib.SMTPConnectError as exc:
            return exc.smtp_code
        except smtplib.SMTPServerDisconnected:
            return 421

    started = time.monotonic()
    with ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(attempt, range(24)))
    assert set(codes) <= {250, 421}
    assert codes.count(250) == len(sink.messages) >= 4
    assert time.monotonic() - started < 120


def test_null_sender_bounce_passes_through(sink: Sink, make_gateway: Callable[..., GatewayProcess]) -> None:
    gateway = make_gateway(sink.port)
    raw = message("Undelivered Mail Returned to Sender", "The message could not be delivered.", sender="")
    send(gateway.port, raw, sender="")
    assert [(m.sender, m.recipients) for m in sink.messages] == [("<>", ["bob@example.com"])]
