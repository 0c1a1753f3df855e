"""Observability of a running gateway: one JSON log line per message (never values),
Prometheus metrics at /metrics, and /healthz and /readyz that mean what they say."""

from __future__ import annotations

import json
import os
import shutil
import smtplib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import (
    REPO,
    GatewayProcess,
    Sink,
    create_pg_database,
    drop_pg_database,
    free_port,
    message,
    write_settings,
)

TFN = "123 456 782"
CARD = "4111 1111 1111 1111"
HOLD_ALL = "rules:\n  - name: hold-external\n    when: {recipient: external}\n    action: hold\n"
HOLD_TEXT = f"Client tax file number {TFN}, card {CARD} for the refund."


def until(check: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    """Wait for ``check`` (a generous bound only to avoid hanging; never a timed assertion)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not met within {timeout} s")
        time.sleep(0.1)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, by (name, sorted labels)."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), float("nan"))


class Node:
    """A gateway with its console (for /metrics) on free ports."""

    def __init__(self, workdir: Path, sink_port: int, **overrides: Any):
        self.web = free_port()
        console = {"enabled": True, "listen": f"127.0.0.1:{self.web}", "cookie_secure": False}
        config, port = write_settings(workdir, sink_port, console=console, **overrides)
        self.process = GatewayProcess(config, port, workdir)

    def start(self) -> Node:
        self.process.start()
        until(lambda: self.get("/healthz").status_code == 200, what="web console up")
        return self

    def get(self, path: str) -> httpx.Response:
        try:
            return httpx.get(f"http://127.0.0.1:{self.web}{path}", timeout=30)
        except httpx.TransportError:
            return httpx.Response(599)

    def metrics(self) -> str:
        response = self.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        return response.text

    def send(self, raw: bytes, rcpts: tuple[str, ...] = ("bob@example.com",)) -> tuple[int, str]:
        with smtplib.SMTP("127.0.0.1", self.process.port, timeout=60) as client:
            client.ehlo()
            client.mail("alice@agency.gov.au")
            for rcpt in rcpts:
                client.rcpt(rcpt)
            code, text = client.data(raw)
        return code, text.decode()

    def log_records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.process.log().splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    workdir = tmp_path_factory.mktemp("observed")
    policy = workdir / "policy.yaml"
    shutil.copy(REPO / "policies" / "default.yaml", policy)
    sink = Sink().start()
    gateway = Node(workdir, sink.port, policy=str(policy)).start()
    yield gateway
    gateway.process.stop()
    sink.stop()


def test_one_json_line_per_message_with_stages_and_no_values(node: Node) -> None:
    code, reply = node.send(message("refund", HOLD_TEXT))
    assert code == 250 and "Held for review" in reply
    ident = reply.rsplit("[", 1)[1].rstrip("]")
    code, _ = node.send(message("lunch", "See you at noon by the river."))
    assert code == 250
    until(lambda: any(r.get("id") == ident for r in node.log_records()), what="message logged")
    records = node.log_records()
    assert all({"ts", "level", "logger", "msg"} <= set(r) for r in records)
    [line] = [r for r in records if r.get("id") == ident]
    assert line["decision"] == "hold" and "tax-file-number-external" in line["rules"]
    assert line["entities"]["AU_TFN"] == 1 and line["entities"]["CREDIT_CARD"] == 1
    assert line["message_id"] and line["recipients"] == 1 and line["held"] == 1
    for stage in ("scan_ms", "act_ms", "total_ms", "detect_ms"):
        assert line[stage] >= 0
    assert line["total_ms"] >= line["scan_ms"]
    assert sum(1 for r in records if r.get("logger") == "dlp_gateway.messages") >= 2
    log = node.process.log()
    for secret in (TFN, CARD, TFN.replace(" ", ""), CARD.replace(" ", "")):
        assert secret not in log


def test_metrics_count_decisions_stages_sessions_and_queues(node: Node) -> None:
    before = node.metrics()
    code, _ = node.send(message("refund again", HOLD_TEXT))
    assert code == 250
    code, _ = node.send(message("lunch again", "Noon still works."))
    assert code == 250
    after = node.metrics()
    for decision in ("hold", "pass"):
        grew = value(after, "dlp_messages_total", decision=decision) - value(
            before, "dlp_messages_total", decision=decision
        )
        assert grew == 1
    for stage in ("scan", "act", "total"):
        counted = value(after, "dlp_stage_seconds_count", stage=stage)
        assert counted - value(before, "dlp_stage_seconds_count", stage=stage) == 2
    assert value(after, "dlp_smtp_data_replies_total", **{"class": "2xx"}) >= 2
    assert value(after, "dlp_smtp_sessions_opened_total") >= 2
    # Nothing in flight once the replies are in; the gauges read the live objects.
    assert value(after, "dlp_smtp_sessions") >= 0
    assert value(after, "dlp_messages_in_flight") == 0
    assert value(after, "dlp_scanner_queue") == 0
    assert value(after, "dlp_scanner_workers") == 1
    assert value(after, "dlp_scanner_workers_alive") == 1
    assert value(after, "dlp_outbox_jobs", state="queued") == 0
    assert value(after, "dlp_outbox_oldest_job_age_seconds") == 0
    assert value(after, "dlp_scan_failures_total", reason="timeout") == 0
    assert value(after, "dlp_policy_rules") > 0
    for secret in (TFN, CARD, "alice@agency.gov.au", "bob@example.com", "refund"):
        assert secret not in after


def test_health_and_readiness(node: Node) -> None:
    assert node.get("/healthz").json() == {"status": "ok"}
    ready = node.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "checks": {"policy": True, "scanner": True, "store": True}}


def test_policy_reloads_are_counted_and_a_bad_one_is_refused(node: Node) -> None:
    policy = node.process.workdir / "policy.yaml"
    good = policy.read_text()
    policy.write_text("rules:\n  - name: broken\n    when: {nonsense: 1}\n    action: hold\n")
    until(
        lambda: value(node.metrics(), "dlp_policy_reloads_total", result="refused") == 1,
        what="refused reload counted",
    )
    time.sleep(0.01)
    policy.write_text(good)
    os.utime(policy, None)
    until(
        lambda: value(node.metrics(), "dlp_policy_reloads_total", result="ok") >= 1,
        what="good reload counted",
    )
    assert node.get("/readyz").status_code == 200


def test_readyz_says_not_ready_while_the_store_is_gone_and_mail_gets_4xx(tmp_path: Path) -> None:
    url = create_pg_database()
    hold_all = tmp_path / "hold.yaml"
    hold_all.write_text(HOLD_ALL)
    sink = Sink().start()
    gateway = Node(tmp_path, sink.port, store_url=url, policy=str(hold_all))
    try:
        gateway.start()
        assert gateway.get("/readyz").status_code == 200
        drop_pg_database(url)  # the store no longer answers (connections cut, database gone)
        until(lambda: gateway.get("/readyz").status_code == 503, what="not ready")
        body = gateway.get("/readyz").json()
        assert body["ready"] is False and body["checks"]["store"] is False
        assert body["checks"]["scanner"] is True and body["checks"]["policy"] is True
        code, _ = gateway.send(message("held", "Anything at all."))
        assert 400 <= code < 500
        assert sink.messages == []
        assert gateway.get("/metrics").status_code == 200  # the scrape survives a down store
        assert gateway.get("/healthz").status_code == 200  # alive, only not ready
    finally:
        gateway.process.stop()
        sink.stop()
        drop_pg_database(url)
