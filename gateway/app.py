"""Assemble and run the gateway: store, scanner pool, policy, SMTP listener."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import uvicorn

from detectors.registry import all_entities
from gateway.confirm.service import ConfirmService, run_expiry
from gateway.outbox import Outbox, OutboxWorker
from gateway.pipeline import Pipeline
from gateway.policy import load_policy
from gateway.relay import NextHop
from gateway.settings import Settings, parse_hostport
from gateway.smtp import Handler, server_factory, tls_context
from gateway.store import Store
from gateway.web import WebContext, build_app
from gateway.workers import ScannerPool

log = logging.getLogger(__name__)

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
POLICY_POLL_S = 2.0


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


def next_hop(settings: Settings) -> NextHop:
    return NextHop(settings.next_hop.url, settings.next_hop.timeout_s, settings.next_hop.helo)


class Gateway:
    """One gateway process: everything `dlp-gateway run` starts."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.policy_path = resolve_policy_path(settings.policy)
        organisation = settings.organisation()
        # Refuse to start on a bad policy.
        policy = load_policy(self.policy_path, all_entities(), organisation.directory.names)
        self.store = Store(settings.store_url)
        self.pool = ScannerPool(
            settings.detector_config(), settings.limits, settings.scan.workers, settings.scan.timeout_s
        )
        self.pipeline = Pipeline(
            self.pool, policy, self.store, settings.internal_domains, settings.scan.fail_mode, organisation
        )
        self.hop = next_hop(settings)
        self.outbox = Outbox(self.store, settings.outbox)
        self.courier = OutboxWorker(self.outbox, self.hop)
        self.confirm = ConfirmService(settings, self.store, self.outbox, self.courier.wake)
        self.handler = Handler(settings.smtp, self.hop, self.pipeline, self.confirm)
        self._background: list[asyncio.Task[None]] = []
        self._server: asyncio.Server | None = None
        self._web: uvicorn.Server | None = None
        self._web_task: asyncio.Task[None] | None = None
        self._watch_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Migrate the store, start the workers, then start listening."""
        await asyncio.to_thread(self.store.migrate)
        await self.pool.start()
        self._background = [
            asyncio.create_task(self.courier.run()),
            asyncio.create_task(run_expiry(self.confirm, self.settings.confirm.expiry_interval_s)),
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

    async def _start_web(self) -> None:
        host, port = parse_hostport(self.settings.console.listen, "console.listen")
        app = build_app(WebContext(self.settings, self.store, self.hop, self.pipeline, self.confirm))
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
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
        self.pool.close()
        self.store.close()

    def reload_policy(self) -> None:
        self.pipeline.reload_policy(self.policy_path)


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
