"""The policy language end to end: smtplib → `dlp-gateway run` → aiosmtpd sink."""

from __future__ import annotations

import json
import smtplib
import time
from collections.abc import Callable
from pathlib import Path

from tests.policy.helpers import write_policy
from tests.support import GatewayProcess, Sink, message

TFN_BODY = "Client tax file number 123 456 782 for the refund."


def deliver(
    port: int, raw: bytes, rcpts: tuple[str, ...], sender: str = "alice@agency.gov.au"
) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        client.ehlo()
        client.mail(sender)
        for rcpt in rcpts:
            client.rcpt(rcpt)
        return client.data(raw)


def held(gateway: GatewayProcess) -> list[dict[str, object]]:
    return [json.loads(line) for line in gateway.cli("held", "list", "--json").stdout.splitlines()]


def test_default_policy_marked_message_reaches_government_and_is_held_for_a_company(
    sink: Sink, make_gateway: Callable[..., GatewayProcess]
) -> None:
    gateway = make_gateway(sink.port)
    rcpts = ("carol@agency.gov.au", "ops@other.nsw.gov.au", "bob@example.com")
    raw = message("Budget figures [SEC=OFFICIAL:Sensitive]", "The draft figures for next year are below.")
    code, text = deliver(gateway.port, raw, rcpts)
    assert code == 250 and b"held 1 for review" in text
    arrived = [m.recipients for m in sink.messages if b"Subject: Budget" in m.data]
    assert arrived == [["carol@agency.gov.au", "ops@other.nsw.gov.au"]]
    (entry,) = held(gateway)
    # Monitor rules (e.g. a first message to a new domain) are recorded beside it.
    assert [r for r in entry["rules"] if not r.endswith("-monitor")] == [
        "marking-sensitive-outside-government"
    ]
    assert entry["per_recipient"] == {
        "carol@agency.gov.au": "pass",
        "ops@other.nsw.gov.au": "pass",
        "bob@example.com": "hold",
    }


def test_redacted_copy_is_delivered_and_unredactable_html_is_held(
    tmp_path: Path, sink: Sink, make_gateway: Callable[..., GatewayProcess]
) -> None:
    policy = write_policy(
        tmp_path,
        """
        rules:
          - name: mask-tfn
            when: {all: [{recipient: external}, {findings: {entities: [AU_TFN], min_score: 0.6}}]}
            action: redact
            redact: {operator: mask, masking_char: "#", chars_to_mask: 7}
        """,
    )
    gateway = make_gateway(sink.port, policy=str(policy))
    code, _ = deliver(gateway.port, message("refund", TFN_BODY), ("bob@example.com",))
    assert code == 250
    (got,) = sink.messages
    assert got.data.startswith(b"X-DLP-Decision: redact; id=")
    assert b"123 456 782" not in got.data and b"####### 782" in got.data

    html = (
        b"From: alice@agency.gov.au\r\nTo: bob@example.com\r\nSubject: refund\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>" + TFN_BODY.encode() + b"</p>\r\n"
    )
    code, text = deliver(gateway.port, html, ("bob@example.com",))
    assert code == 250 and b"Held for review" in text
    assert [m for m in sink.messages if b"<p>Client tax" in m.data] == []
    assert [e["rules"] for e in held(gateway)] == [["mask-tfn"]]
    assert "123 456 782" not in gateway.log()


def test_tags_and_compliance_copy(
    tmp_path: Path, sink: Sink, make_gateway: Callable[..., GatewayProcess]
) -> None:
    policy = write_policy(
        tmp_path,
        """
        rules:
          - name: tag-identifiers
            when: {findings: {entities: [AU_TFN]}}
            action: notify
            add_header: {X-DLP-Tag: personal-information}
            subject_prefix: "[PRIVACY]"
            copy_to: compliance@agency.gov.au
        """,
    )
    gateway = make_gateway(sink.port, policy=str(policy))
    raw = message("refund", TFN_BODY, to="carol@agency.gov.au")
    assert deliver(gateway.port, raw, ("carol@agency.gov.au",))[0] == 250
    (delivered,) = [m for m in sink.messages if m.recipients == ["carol@agency.gov.au"]]
    (copy,) = [m for m in sink.messages if m.recipients == ["compliance@agency.gov.au"]]
    assert delivered.recipients == ["carol@agency.gov.au"]
    assert b"\r\nX-DLP-Tag: personal-information\r\n" in delivered.data
    assert b"\r\nSubject: [PRIVACY] refund\r\n" in delivered.data
    assert copy.recipients == ["compliance@agency.gov.au"]
    assert copy.data.startswith(b"X-DLP-Decision: copy; id=") and copy.data.endswith(raw)


def test_policy_file_change_is_picked_up_and_a_broken_edit_is_refused(
    tmp_path: Path, sink: Sink, make_gateway: Callable[..., GatewayProcess]
) -> None:
    pass_all = "rules:\n  - name: note\n    when: {recipient: external}\n    action: notify\n"
    hold_all = "rules:\n  - name: hold-external\n    when: {recipient: external}\n    action: hold\n"
    policy = write_policy(tmp_path, pass_all)
    gateway = make_gateway(sink.port, policy=str(policy))
    assert deliver(gateway.port, message("one", "first"), ("bob@example.com",))[0] == 250
    assert len(sink.messages) == 1

    policy.write_text(hold_all)
    _wait_for(lambda: "policy reloaded" in gateway.log())
    _, text = deliver(gateway.port, message("two", "second"), ("bob@example.com",))
    assert b"Held for review" in text and not _arrived(sink, b"Subject: two")

    policy.write_text(hold_all.replace("action: hold", "action: hold-forever"))
    _wait_for(lambda: "policy reload refused" in gateway.log())
    assert f"{policy}:4:" in gateway.log()
    _, text = deliver(gateway.port, message("three", "third"), ("bob@example.com",))
    assert b"Held for review" in text and not _arrived(sink, b"Subject: three")


def _arrived(sink: Sink, subject: bytes) -> bool:
    """Whether the message itself reached the sink (notices to senders and reviewers may also arrive)."""
    return any(subject + b"\r\n" in m.data for m in sink.messages)


def _wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
