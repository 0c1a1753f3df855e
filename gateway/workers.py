"""A pool of scanner processes, so detection never blocks the SMTP event loop.

Each worker builds its Scanner once (the Presidio engine is expensive to build).
A scan that overruns its timeout, or a worker that dies, costs only that
message a 451: the pool is torn down and rebuilt, and the upstream MTA retries.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from detectors.config import DetectorConfig
from gateway.extract import ExtractLimits
from gateway.model import ScanResult
from gateway.scan import Scanner

log = logging.getLogger(__name__)


class ScanFailed(Exception):
    """The message could not be scanned (timeout, worker crash, parser bug)."""


# The one Scanner of a worker process.  ProcessPoolExecutor only lets an
# initializer hand state to later tasks through the worker's module globals.
_worker_scanner: Scanner | None = None


def _init_worker(config: DetectorConfig, limits: ExtractLimits) -> None:
    global _worker_scanner
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    _worker_scanner = Scanner.build(config, limits)


def _scan_in_worker(raw: bytes) -> ScanResult:
    assert _worker_scanner is not None, "worker not initialised"
    return _worker_scanner.scan(raw)


def _warm_up() -> int:
    return os.getpid()


def pool_size(requested: int) -> int:
    """Worker processes: as requested, or one per core when ``requested`` is 0 or less."""
    if requested > 0:
        return requested
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# Messages handed to the process pool beyond one per worker only wait in its
# queue; keeping that queue short bounds memory and makes callers wait here,
# in order, where the SMTP side (its in-flight limit, then 451) can see it.
QUEUE_PER_WORKER = 2


class ScannerPool:
    """Scan messages in worker processes with a per-message timeout and a bounded queue."""

    def __init__(self, config: DetectorConfig, limits: ExtractLimits, workers: int, timeout_s: float):
        self._config = config
        self._limits = limits
        self._workers = pool_size(workers)
        self._timeout_s = timeout_s
        self._pool = self._new_pool()
        self._slots = asyncio.Semaphore(self._workers * QUEUE_PER_WORKER)
        self._waiting = 0

    @property
    def workers(self) -> int:
        """How many worker processes scan."""
        return self._workers

    @property
    def waiting(self) -> int:
        """Messages waiting for a queue slot (back-pressure; 0 when the pool keeps up)."""
        return self._waiting

    def _new_pool(self) -> ProcessPoolExecutor:
        # "spawn" keeps workers free of the parent's event loop, sockets and threads.
        return ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self._config, self._limits),
        )

    async def start(self) -> None:
        """Start every worker and wait until each has built its engine."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._pool, _warm_up) for _ in range(self._workers)))

    async def scan(self, raw: bytes) -> ScanResult:
        """Scan one message; raise ScanFailed on timeout or worker failure.

        At most ``QUEUE_PER_WORKER`` messages per worker are in the process
        pool; later callers wait for a slot (within the same timeout).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout_s
        self._waiting += 1
        try:
            await asyncio.wait_for(self._slots.acquire(), self._timeout_s)
        except TimeoutError:
            raise ScanFailed("scanner queue full") from None
        finally:
            self._waiting -= 1
        try:
            return await self._scan(raw, max(0.1, deadline - loop.time()))
        finally:
            self._slots.release()

    async def _scan(self, raw: bytes, timeout_s: float) -> ScanResult:
        loop = asyncio.get_running_loop()
        try:
            # Inside the try: a pool whose worker died while idle refuses the submit itself.
            future = loop.run_in_executor(self._pool, _scan_in_worker, raw)
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            log.warning("scan timed out after %.0f s; restarting scanner pool", self._timeout_s)
            self._restart()
            raise ScanFailed("scan timed out") from None
        except BrokenProcessPool:
            log.warning("scanner worker died; restarting scanner pool")
            self._restart()
            raise ScanFailed("scanner worker died") from None
        except Exception as exc:
            log.exception("scan failed")
            raise ScanFailed(f"scan failed: {type(exc).__name__}") from exc

    def _restart(self) -> None:
        old = self._pool
        self._pool = self._new_pool()
        for process in list(getattr(old, "_processes", {}).values()):
            process.kill()  # a hung parser would otherwise hold its worker forever
        old.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the workers."""
        self._pool.shutdown(wait=True, cancel_futures=True)
