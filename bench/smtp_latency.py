"""Messages per second and added latency for clean 5 KB messages through the gateway.

Starts an aiosmtpd sink (its own process) and `dlp-gateway run` in front of it,
then sends the same messages with smtplib straight to the sink and through
the gateway, one session at a time and with several sessions in parallel.

    .venv/bin/python bench/smtp_latency.py [--messages 300] [--sessions 1,4,10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from smtplib import SMTP

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support import free_port, wait_for_port, write_settings  # noqa: E402

SINK = """
import asyncio, sys
from aiosmtpd.controller import Controller
class H:
    async def handle_DATA(self, server, session, envelope):
        return "250 2.0.0 Ok"
c = Controller(H(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
asyncio.get_event_loop().run_forever()
"""


def clean_message(size: int = 5120) -> bytes:
    line = "The quarterly planning meeting moves to Thursday at ten in room four. "
    body = (line * (size // len(line) + 1))[:size]
    wrapped = "\r\n".join(body[i : i + 76] for i in range(0, len(body), 76))
    return (
        "From: alice@agency.gov.au\r\nTo: bob@example.com\r\nSubject: planning\r\n"
        f"Message-ID: <bench@agency.gov.au>\r\n\r\n{wrapped}\r\n"
    ).encode()


def run_load(port: int, raw: bytes, messages: int, sessions: int) -> tuple[float, list[float]]:
    """Send `messages` messages over `sessions` parallel connections; (msg/s, latencies in s)."""
    per_session = messages // sessions

    def session(_: int) -> list[float]:
        latencies = []
        with SMTP("127.0.0.1", port, timeout=60) as client:
            client.ehlo()
            for _ in range(per_session):
                started = time.perf_counter()
                client.sendmail("alice@agency.gov.au", ["bob@example.com"], raw)
                latencies.append(time.perf_counter() - started)
        return latencies

    started = time.perf_counter()
    with ThreadPoolExecutor(sessions) as pool:
        results = [lat for part in pool.map(session, range(sessions)) for lat in part]
    return len(results) / (time.perf_counter() - started), results


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _row(sessions: int, path: str, rate: float, *millis: float) -> str:
    return f"{sessions:>10} {path:>10} {rate:10.0f} " + " ".join(f"{m:10.1f}" for m in millis)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--sessions", default="1,4,10")
    args = parser.parse_args()
    raw = clean_message()
    sink_port = free_port()
    sink = subprocess.Popen([sys.executable, "-c", SINK, str(sink_port)])
    workdir = Path(tempfile.mkdtemp(prefix="dlp-bench-"))
    config, gw_port = write_settings(workdir, sink_port, scan={"workers": os.cpu_count() or 2})
    gateway = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "--config", str(config), "run"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        wait_for_port(sink_port)
        wait_for_port(gw_port, 120, gateway)
        run_load(gw_port, raw, 20, 1)  # warm up workers and connections
        print(f"clean {len(raw)} B messages, {args.messages} per run, {os.cpu_count()} cores")
        columns = ("sessions", "path", "msg/s", "p50 ms", "p99 ms", "added p50", "added p99")
        print(" ".join(f"{c:>10}" for c in columns))
        for sessions in (int(s) for s in args.sessions.split(",")):
            direct_rate, direct = run_load(sink_port, raw, args.messages, sessions)
            gw_rate, through = run_load(gw_port, raw, args.messages, sessions)
            direct_p = (pct(direct, 0.5), pct(direct, 0.99))
            through_p = (pct(through, 0.5), pct(through, 0.99))
            added = (through_p[0] - direct_p[0], through_p[1] - direct_p[1])
            print(_row(sessions, "direct", direct_rate, *direct_p))
            print(_row(sessions, "gateway", gw_rate, *through_p, *added))
    finally:
        gateway.terminate()
        sink.terminate()
        gateway.wait()
        sink.wait()


if __name__ == "__main__":
    main()
