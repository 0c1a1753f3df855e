"""Assemble and run the gateway: store, scanner pool, policy, SMTP listener."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import replace
from pathlib import Path

import uvicorn

from detectors.config import DetectorConfig
from detectors.registry import NER_ENTITIES, all_entities
from gateway.confirm.service import ConfirmService, run_expiry
from gateway.history import BatchedSenderHistory
from gateway.metrics import Metrics, scanner_state
from gateway.outbox import Outbox, OutboxWorker
from gateway.pipeline import Pipeline
from gateway.policy import Policy, load_policy
from gateway.relay import NextHop
from gateway.settings import Settings, parse_hostport
from gateway.smtp import Handler, server_factory, tls_context
from gateway.store import Store
from gateway.web import WebContext, build_app
from gateway.workers import ScanFailed, ScannerPool

log = logging.getLogger(__name__)

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
POLICY_POLL_S = 2.0
SCANNER_CHECK_S = 5.0  # how often an idle scanner pool is checked for a dead worker


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime_ns / 1e9
    except OSError:
        return None


def resolve_policy_path(configured: str) -> Path:
    """The policy file: as configured, else the shipped copy beside the package."""
    path = Path(configured)
    if path.exists() or path.is_absolute():
        return path
    shipped = PACKAGE_ROOT / configured
    return shipped if shipped.exists() else path


def next_hop(settings: Settings, pooled: bool = False) -> NextHop:
    """The next hop; ``pooled`` (the running gateway) keeps idle connections for reuse.
    One-off commands leave it off, so they never exit holding open connections."""
    hop = settings.next_hop
    pool_size = hop.pool_size if pooled else 0
    return NextHop(hop.url, hop.timeout_s, hop.helo, pool_size=pool_size, idle_s=hop.idle_s)


def detector_config(settings: Settings, policy: Policy) -> DetectorConfig:
    """The detectors' settings, with spaCy NER switched on when a rule needs its entity
    types (PERSON, LOCATION, …): NER costs ~10× the pattern recognisers, so only then."""
    config = settings.detector_config()
    return replace(config, ner=config.ner or bool(policy.entities & NER_ENTITIES))


class Gateway:
    """One gateway process: everything `dlp-gateway run` starts."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.policy_path = resolve_policy_path(settings.policy)
        organisation = settings.organisation()
        # Refuse to start on a bad policy.
        known = all_entities(settings.detector_config().recognizers_dir)
        policy = load_policy(self.policy_path, known, organisation.directory.names)
        self.store = Store(settings.store_url, settings.encryption.keyring())
        self.pool = ScannerPool(
            detector_config(settings, policy), settings.limits, settings.scan.workers, settings.scan.timeout_s
        )
        self.pipeline = Pipeline(
            self.pool,
            policy,
            self.store,
            settings.internal_domains,
            settings.scan.fail_mode,
            organisation,
            BatchedSenderHistory(self.store),
            known,
        )
        self.hop = next_hop(settings, pooled=True)
        self.outbox = Outbox(self.store, settings.outbox)
        self.courier = OutboxWorker(self.outbox, self.hop)
        self.confirm = ConfirmService(settings, self.store, self.outbox, self.courier.wake)
        self.handler = Handler(settings.smtp, self.hop, self.pipeline, self.confirm)
        self.metrics = self._metrics()
        self._background: list[asyncio.Task[None]] = []
        self._server: asyncio.Server | None = None
        self._web: uvicorn.Server | None = None
        self._web_task: asyncio.Task[None] | None = None
        self._watch_task: asyncio.Task[None] | None = None

    def _metrics(self) -> Metrics:
        """This process's metrics, wired to the live objects they read."""
        metrics = Metrics()
        self.pipeline.metrics = metrics
        self.handler.metrics = metrics
        handler, pool, pipeline = self.handler, self.pool, self.pipeline
        metrics.gauge("dlp_smtp_sessions", "SMTP sessions open now", lambda: handler.sessions)
        metrics.gauge("dlp_messages_in_flight", "Messages being scanned now", lambda: handler.in_flight)
        metrics.gauge("dlp_scanner_queue", "Messages waiting for a scanner slot", lambda: pool.waiting)
        metrics.gauge("dlp_scanner_workers", "Scanner worker processes configured", lambda: pool.workers)
        metrics.gauge(
            "dlp_scanner_workers_alive", "Scanner worker processes running", lambda: scanner_state(pool)[1]
        )
        metrics.gauge("dlp_policy_rules", "Rules in the running policy", lambda: len(pipeline.policy.rules))
        metrics.watch_outbox(self.store.engine)
        return metrics

    async def start(self) -> None:
        """Migrate the store, start the workers, then start listening."""
        await asyncio.to_thread(self.store.migrate)
        await self.pool.start()
        self._background = [
            asyncio.create_task(self.courier.run()),
            asyncio.create_task(run_expiry(self.confirm, self.settings.confirm.expiry_interval_s)),
            asyncio.create_task(self._supervise_scanner()),
            asyncio.create_task(
                self.store.maintain_encryption(
                    self.settings.encryption.rekey_interval_s, self.settings.encryption.rekey_batch
                )
            ),
        ]
        host, port = parse_hostport(self.settings.smtp.listen, "smtp.listen")
        loop = asyncio.get_running_loop()
        factory = server_factory(self.handler, self.settings.smtp, tls_context(self.settings.smtp))
        self._server = await loop.create_server(factory, host=host, port=port)
        log.info("SMTP listening on %s:%d, next hop %s", host, port, self.settings.next_hop.url)
        if self.settings.console.enabled:
            await self._start_web()
        self._watch_task = asyncio.create_task(self._watch_policy())

    async def _watch_policy(self) -> None:
        """Reload the policy when its file changes (polling: works on every filesystem).
        A bad edit is logged and the running policy kept, as with SIGHUP."""
        last = _mtime(self.policy_path)
        while True:
            await asyncio.sleep(POLICY_POLL_S)
            current = _mtime(self.policy_path)
            if current != last:
                last = current
                self.reload_policy()

    async def _supervise_scanner(self) -> None:
        """Restart a scanner pool whose worker died while idle.

        A worker dying mid-scan restarts the pool at once (that message gets 451);
        one dying between messages leaves the pool broken until the next scan.
        Nudging it here keeps /readyz from reporting "not ready" forever on a node
        that, being unready, would get no message to heal it.
        """
        while True:
            await asyncio.sleep(SCANNER_CHECK_S)
            if not scanner_state(self.pool)[0]:
                log.warning("scanner pool is broken while idle; restarting it")
                try:
                    await self.pool.scan(b"")  # fails on the broken pool, which restarts it
                except ScanFailed:
                    pass
                except Exception as exc:  # keep supervising whatever went wrong
                    log.error("scanner pool restart failed: %s", type(exc).__name__)

    async def _start_web(self) -> None:
        host, port = parse_hostport(self.settings.console.listen, "console.listen")
        context = WebContext(self.settings, self.store, self.hop, self.pipeline, self.confirm, self.metrics)
        app = build_app(context)
        # log_config None: uvicorn's records go through our handler (JSON), not its own.
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", lifespan="off", log_config=None
        )
        self._web = uvicorn.Server(config)
        self._web_task = asyncio.create_task(self._web.serve())
        while not self._web.started and not self._web_task.done():
            await asyncio.sleep(0.05)
        log.info("web console on http://%s:%d", host, port)

    @property
    def smtp_port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._watch_task is not None:
            self._watch_task.cancel()
        if self._web is not None and self._web_task is not None:
            self._web.should_exit = True
            await self._web_task
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in self._background:
            task.cancel()  # a job cut off mid-delivery is re-queued when its lease runs out
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.handler.drain()  # history records queued after replies, before the store closes
        await self.hop.aclose()
        self.pool.close()
        self.store.close()

    def reload_policy(self) -> None:
        self.metrics.policy_reloaded(self.pipeline.reload_policy(self.policy_path))


async def run_forever(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM; SIGHUP reloads the policy."""
    gateway = Gateway(settings)
    await gateway.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, gateway.reload_policy)
    console = f", console http://{settings.console.listen}" if settings.console.enabled else ""
    print(f"dlp-gateway ready: SMTP {settings.smtp.listen} → {settings.next_hop.url}{console}", flush=True)
    await stop.wait()
    await gateway.stop()
