"""Scanner pool: sizing, bounded queue (back-pressure) and results from worker processes."""

from __future__ import annotations

import asyncio
import os

from detectors.config import DetectorConfig
from gateway.extract import ExtractLimits
from gateway.workers import QUEUE_PER_WORKER, ScannerPool, pool_size

MESSAGE = (
    b"From: a@agency.gov.au\r\nTo: b@example.com\r\nSubject: payroll\r\n\r\n"
    b"Her tax file number is 123 456 782.\r\n"
)


def test_pool_size_defaults_to_the_cores() -> None:
    assert pool_size(3) == 3
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert pool_size(0) == cores
    assert pool_size(-1) == cores


async def test_many_messages_through_a_small_queue() -> None:
    pool = ScannerPool(DetectorConfig(), ExtractLimits(), workers=1, timeout_s=120)
    try:
        await pool.start()
        count = 4 * QUEUE_PER_WORKER
        tasks = [asyncio.create_task(pool.scan(MESSAGE)) for _ in range(count)]
        await asyncio.sleep(0)  # let every task reach the queue
        assert pool.waiting > 0  # the rest wait for a slot instead of piling into the pool
        results = await asyncio.gather(*tasks)
        assert pool.waiting == 0
        assert all(any(f.entity_type == "AU_TFN" for f in r.findings) for r in results)
    finally:
        pool.close()
