"""Prometheus metrics for one gateway process, served at ``/metrics`` on the web port.

The registry belongs to the ``Gateway`` object (not prometheus-client's global
one), so two gateways in one process, or a test, never mix their figures.
Labels are bounded enumerations (decisions, stages, reasons, reply classes):
never an address, subject, id or anything found in a message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds: from a clean message's few milliseconds to a large attachment's minute.
STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
STAGES = ("scan", "act", "total")
DECISIONS = ("pass", "notify", "warn", "hold", "redact", "reject")


def scan_failure_reason(message: str) -> str:
    """A bounded label for a ScanFailed message (the pool words them; see gateway/workers.py)."""
    if "timed out" in message:
        return "timeout"
    if "died" in message:
        return "worker_died"
    if "queue full" in message:
        return "queue_full"
    return "error"


@dataclass(frozen=True)
class OutboxBacklog:
    """Outbox jobs not yet finished, across every node sharing the store."""

    queued: int
    delivering: int
    oldest_age_s: float


def outbox_backlog(engine: sa.Engine) -> OutboxBacklog:
    """Count unfinished outbox jobs and the age of the oldest (one small query)."""
    # Imported here: gateway.outbox imports the store, which must not need metrics.
    from gateway.outbox import DELIVERING, QUEUED, outbox

    query = (
        sa.select(outbox.c.state, sa.func.count(), sa.func.min(outbox.c.created_at))
        .where(outbox.c.state.in_((QUEUED, DELIVERING)))
        .group_by(outbox.c.state)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    counts = {str(state): int(n) for state, n, _ in rows}
    oldest = [_aware(first) for _, _, first in rows if first is not None]
    age = (datetime.now(UTC) - min(oldest)).total_seconds() if oldest else 0.0
    return OutboxBacklog(counts.get(QUEUED, 0), counts.get(DELIVERING, 0), max(age, 0.0))


class _OutboxCollector(Collector):
    """Reads the outbox backlog at scrape time; a down store yields no sample, not an error."""

    def __init__(self, engine: sa.Engine):
        self._engine = engine

    def collect(self) -> Iterator[Metric]:
        try:
            backlog = outbox_backlog(self._engine)
        except Exception as exc:  # the store being down must not break the scrape
            log.warning("metrics: outbox backlog unavailable: %s", type(exc).__name__)
            return
        jobs = GaugeMetricFamily(
            "dlp_outbox_jobs", "Outbox jobs not yet finished (all nodes)", labels=["state"]
        )
        jobs.add_metric(["queued"], backlog.queued)
        jobs.add_metric(["delivering"], backlog.delivering)
        yield jobs
        yield GaugeMetricFamily(
            "dlp_outbox_oldest_job_age_seconds",
            "Age of the oldest unfinished outbox job (0 when none)",
            value=backlog.oldest_age_s,
        )

    def describe(self) -> Iterable[Metric]:
        return []  # collected live; nothing to declare up front


def scanner_state(pool: object) -> tuple[bool, int]:
    """(usable, live worker processes) of a ScannerPool.

    Read from the pool's ProcessPoolExecutor, which says whether a worker died
    (it is then "broken" until the pool restarts it) but has no public way to
    ask; a pool without an executor (a stand-in) counts as usable.
    """
    executor = getattr(pool, "_pool", None)
    if executor is None:
        return True, 0
    processes = dict(getattr(executor, "_processes", None) or {})
    alive = sum(1 for p in processes.values() if p.is_alive())
    broken = bool(getattr(executor, "_broken", False))
    return not broken and alive == len(processes), alive


class Metrics:
    """Every metric of one gateway process, on its own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.messages = Counter("dlp_messages", "Messages decided, by decision", ["decision"], registry=r)
        self.replies = Counter(
            "dlp_smtp_data_replies", "Replies to DATA, by class (2xx, 4xx, 5xx)", ["class"], registry=r
        )
        self.stage_seconds = Histogram(
            "dlp_stage_seconds", "Time per stage of a message", ["stage"], buckets=STAGE_BUCKETS, registry=r
        )
        self.sessions_opened = Counter("dlp_smtp_sessions_opened", "SMTP sessions admitted", registry=r)
        self.sessions_refused = Counter(
            "dlp_smtp_sessions_refused", "SMTP connections refused", ["reason"], registry=r
        )
        self.scan_failures = Counter(
            "dlp_scan_failures",
            "Scans that failed, by reason (timeout, worker_died, ...)",
            ["reason"],
            registry=r,
        )
        self.policy_reloads = Counter(
            "dlp_policy_reloads", "Policy reloads, by result (ok, refused)", ["result"], registry=r
        )
        # Present every label from the start, so a rate() has a zero to start from.
        for decision in DECISIONS:
            self.messages.labels(decision)
        for stage in STAGES:
            self.stage_seconds.labels(stage)
        for klass in ("2xx", "4xx", "5xx"):
            self.replies.labels(klass)
        for reason in ("timeout", "worker_died", "queue_full", "error"):
            self.scan_failures.labels(reason)
        for result in ("ok", "refused"):
            self.policy_reloads.labels(result)
        for reason in ("network", "limit"):
            self.sessions_refused.labels(reason)

    def gauge(self, name: str, doc: str, read: Callable[[], float]) -> None:
        """A gauge read from the live object at scrape time (sessions, in-flight, queue)."""
        Gauge(name, doc, registry=self.registry).set_function(read)

    def watch_outbox(self, engine: sa.Engine) -> None:
        """Report the outbox backlog of the store behind ``engine``."""
        self.registry.register(_OutboxCollector(engine))

    def observe_message(self, decision: str, seconds: dict[str, float]) -> None:
        """Count one decided message and record its stage durations."""
        self.messages.labels(decision).inc()
        for stage, value in seconds.items():
            self.stage_seconds.labels(stage).observe(value)

    def observe_reply(self, reply: str) -> None:
        """Count the reply to DATA by its class."""
        code = reply[:1]
        self.replies.labels(f"{code}xx" if code in ("2", "4", "5") else "other").inc()

    def session_admitted(self, refusal: str | None) -> None:
        """Count a connection: admitted (``refusal`` None) or refused, by why."""
        if refusal is None:
            self.sessions_opened.inc()
        else:
            self.sessions_refused.labels("limit" if refusal.startswith("421") else "network").inc()

    def scan_failed(self, message: str) -> None:
        self.scan_failures.labels(scan_failure_reason(message)).inc()

    def policy_reloaded(self, ok: bool) -> None:
        self.policy_reloads.labels("ok" if ok else "refused").inc()

    def render(self) -> bytes:
        """The exposition text (blocking: it queries the store; call off the event loop)."""
        return bytes(generate_latest(self.registry))


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything in the store is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)
