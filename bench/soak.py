"""Soak: a steady rate of mail through the gateway for a long time, watching for leaks.

Starts an aiosmtpd sink and `dlp-gateway run` (PostgreSQL or SQLite store) in a
temporary folder, then sends messages at a fixed rate (one in ``--held-every``
is held, the rest pass) with a client that retries 4xx like an MTA.  Every
``--sample`` seconds it prints one row: messages answered, retries, and the
resident memory (RSS) and open file descriptors of the gateway and of its
scanner workers, from /proc.  Not run in CI.

    .venv/bin/python bench/soak.py [--minutes 30] [--rate 5] [--store-url postgresql://...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.retry_client import Mail, deliver, make_mail  # noqa: E402
from tests.support import GatewayProcess, free_port, wait_for_port, write_settings  # noqa: E402

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

WARM_UP_S = 60.0
HELD_BODY = "Client tax file number 123 456 782 for the refund."
# About 3 KB in lines of ordinary length (SMTP refuses lines over 998 octets).
CLEAN_BODY = "\r\n".join(["The quarterly planning meeting moves to Thursday at ten in room four."] * 40)


@dataclass(frozen=True)
class Sample:
    """Memory and descriptors of one process."""

    pid: int
    rss_kb: int
    fds: int


def sample(pid: int) -> Sample | None:
    """RSS (VmRSS, kB) and open descriptors of ``pid``; None if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    except OSError:
        return None
    rss = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return Sample(pid, rss, fds)


def workers_of(pid: int) -> list[int]:
    """The gateway's scanner workers: its spawned children (not the resource tracker)."""
    try:
        children = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return [c for c in children if b"spawn_main" in _cmdline(c)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@dataclass
class Counts:
    sent: int = 0
    ok: int = 0
    final_5xx: int = 0
    gave_up: int = 0
    retries: int = 0


def paced(rate: float, total: int, held_every: int) -> Iterator[Mail]:
    """``total`` messages at ``rate`` per second (the generator sleeps between them)."""
    start = time.monotonic()
    for i in range(total):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        held = held_every > 0 and i % held_every == 0
        yield make_mail(i, HELD_BODY if held else CLEAN_BODY, tag="soak")


def drive(port: int, args: argparse.Namespace, counts: Counts, stop: threading.Event) -> None:
    """Send at the steady rate until the count or time is used up (both bounded)."""
    total = int(args.rate * args.minutes * 60)
    deadline = time.monotonic() + args.minutes * 60 + 120  # a last message may still be retrying
    lock = threading.Lock()

    def one(mail: Mail) -> None:
        result = deliver(port, mail, deadline)
        with lock:
            counts.retries += len(result.transient)
            if 200 <= result.code < 300:
                counts.ok += 1
            elif result.code >= 500:
                counts.final_5xx += 1
            else:
                counts.gave_up += 1

    with ThreadPoolExecutor(args.sessions) as pool:
        for mail in paced(args.rate, total, args.held_every):
            if stop.is_set():
                break
            counts.sent += 1
            pool.submit(one, mail)


def row(elapsed: float, counts: Counts, gateway: Sample | None, workers: list[Sample]) -> str:
    g_rss = f"{gateway.rss_kb / 1024:8.1f}" if gateway else "    gone"
    g_fds = f"{gateway.fds:6d}" if gateway else "     -"
    w_rss = " ".join(f"{w.rss_kb / 1024:.0f}" for w in workers) or "-"
    w_fds = " ".join(str(w.fds) for w in workers) or "-"
    return (
        f"{elapsed:7.0f} {counts.sent:7d} {counts.ok:7d} {counts.retries:7d} "
        f"{counts.gave_up + counts.final_5xx:6d} "
        f"{g_rss} {g_fds}  {w_rss:>14}  {w_fds:>9}"
    )


HEADER = (
    "      s    sent      ok retries failed  gw RSS MB gw fds  workers RSS MB  wrk fds\n"
    "------- ------- ------- ------- ------ -------- ------  --------------  ---------"
)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=5.0, help="messages per second")
    parser.add_argument("--sessions", type=int, default=4, help="client connections at once (at most)")
    parser.add_argument("--held-every", type=int, default=10, help="one message in N is held (0: none)")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--store-url", default="", help="default: SQLite in the temporary folder")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dlp-soak-") as tmp:
        workdir = Path(tmp)
        sink_port = free_port()
        sink = subprocess.Popen([sys.executable, "-c", SINK, str(sink_port)])
        overrides: dict[str, object] = {"scan": {"workers": args.workers, "timeout_s": 60}}
        if args.store_url:
            overrides["store_url"] = args.store_url
        config, port = write_settings(workdir, sink_port, **overrides)
        gateway = GatewayProcess(config, port, workdir)
        try:
            wait_for_port(sink_port, 30, sink)
            gateway.start()
            assert gateway.proc is not None
            pid = gateway.proc.pid
            counts, stop = Counts(), threading.Event()
            driver = threading.Thread(target=drive, args=(port, args, counts, stop), daemon=True)
            started = time.monotonic()
            driver.start()
            print(
                f"soak: {args.rate}/s for {args.minutes} min, gateway pid {pid}, "
                f"store {args.store_url or 'sqlite'}"
            )
            print(HEADER, flush=True)
            # The baseline is taken after a minute: engines, caches and pools are warm by then.
            first: tuple[Sample | None, list[Sample]] | None = None
            while driver.is_alive():
                current = (sample(pid), [s for w in workers_of(pid) if (s := sample(w))])
                elapsed = time.monotonic() - started
                if first is None and elapsed >= WARM_UP_S:
                    first = current
                print(row(elapsed, counts, *current), flush=True)
                driver.join(timeout=args.sample)
            current = (sample(pid), [s for w in workers_of(pid) if (s := sample(w))])
            print(row(time.monotonic() - started, counts, *current), flush=True)
            _summary(first, current, counts, time.monotonic() - started)
        finally:
            gateway.stop()
            sink.terminate()
            sink.wait(timeout=10)
    return 0


def _summary(
    first: tuple[Sample | None, list[Sample]] | None,
    last: tuple[Sample | None, list[Sample]],
    counts: Counts,
    seconds: float,
) -> None:
    print(
        f"\n{counts.sent} sent in {seconds:.0f} s ({counts.sent / max(seconds, 1e-9):.1f}/s): "
        f"{counts.ok} accepted, {counts.final_5xx} refused, {counts.gave_up} gave up, "
        f"{counts.retries} retries"
    )
    if first and first[0] and last[0]:
        g0, g1 = first[0], last[0]
        print(
            f"gateway RSS {g0.rss_kb / 1024:.1f} → {g1.rss_kb / 1024:.1f} MB, "
            f"open fds {g0.fds} → {g1.fds} (from {WARM_UP_S:.0f} s to the end)"
        )
    if first and first[1] and last[1]:
        w0 = sum(w.rss_kb for w in first[1]) / 1024
        w1 = sum(w.rss_kb for w in last[1]) / 1024
        print(f"workers RSS (sum) {w0:.1f} → {w1:.1f} MB")


if __name__ == "__main__":
    sys.exit(main())
