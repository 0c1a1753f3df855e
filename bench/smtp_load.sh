#!/usr/bin/env bash
# Gateway throughput and added latency under real SMTP load, on loopback only.
#
#   smtp-source → dlp-gateway (scans) → smtp-sink
#   smtp-source → no-scan relay (aiosmtpd, forwards each message) → smtp-sink
#   smtp-source → smtp-sink (ceiling)
#
# with 1, 10 and 50 sessions, then paced load at half the gateway's best rate
# for p50/p99 latency through the relay and through the gateway.  Also prints how
# long the gateway took from start to accepting mail.
#
#   bench/smtp_load.sh                       # MESSAGES=1000 SIZE=5120 SESSIONS="1 10 50"
#   MESSAGES=2000 WORKERS=2 bench/smtp_load.sh
#
# Bounded: every run sends MESSAGES messages and is killed after LIMIT_S seconds.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
PY="$REPO/.venv/bin/python"
MESSAGES="${MESSAGES:-1000}"
SIZE="${SIZE:-5120}"
SESSIONS="${SESSIONS:-1 10 50}"
WORKERS="${WORKERS:-$(nproc)}"  # scanner processes: one per core
LIMIT_S="${LIMIT_S:-300}"
PACED_S="${PACED_S:-10}"        # seconds of paced load for the latency figures
SOURCE=/usr/sbin/smtp-source
SINK=/usr/sbin/smtp-sink
WORK="$(mktemp -d /tmp/dlp-smtp-load.XXXXXX)"
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {  # wait_port PORT SECONDS
    "$PY" - "$1" "$2" <<'EOF'
import socket, sys, time
port, limit = int(sys.argv[1]), float(sys.argv[2])
deadline = time.monotonic() + limit
while time.monotonic() < deadline:
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.02)
sys.exit(1)
EOF
}

SINK_PORT="$(port)"
RELAY_PORT="$(port)"
SINK_USER="$(id -un)"
[ "$(id -u)" = 0 ] && SINK_USER=nobody
"$SINK" -u "$SINK_USER" 127.0.0.1:"$SINK_PORT" 1024 &
PIDS+=($!)

# The no-scan relay: same library (aiosmtpd) and next-hop client (aiosmtplib) as the gateway,
# nothing else.
cat >"$WORK/relay.py" <<'EOF'
import asyncio, sys
import aiosmtplib
from aiosmtpd.controller import Controller

class Relay:
    def __init__(self, port): self.port = port
    async def handle_DATA(self, server, session, envelope):
        try:
            await aiosmtplib.send(envelope.original_content, sender=envelope.mail_from,
                                  recipients=envelope.rcpt_tos, hostname="127.0.0.1", port=self.port)
        except Exception:
            return "451 4.3.0 next hop failed"
        return "250 2.0.0 Ok"

c = Controller(Relay(int(sys.argv[2])), hostname="127.0.0.1", port=int(sys.argv[1]), decode_data=False)
c.start()
asyncio.get_event_loop().run_forever()
EOF
"$PY" "$WORK/relay.py" "$RELAY_PORT" "$SINK_PORT" &
PIDS+=($!)

CONFIG_AND_PORT="$(cd "$REPO" && "$PY" - "$WORK" "$SINK_PORT" "$WORKERS" <<'EOF'
import sys
from pathlib import Path
sys.path.insert(0, ".")
from tests.support import write_settings
config, port = write_settings(Path(sys.argv[1]), int(sys.argv[2]),
                              scan={"workers": int(sys.argv[3])}, smtp={"max_in_flight": 200})
print(config, port)
EOF
)"
read -r CONFIG GW_PORT <<<"$CONFIG_AND_PORT"
STARTED="$(date +%s.%N)"
(cd "$WORK" && PYTHONPATH="$REPO" exec "$PY" -m gateway.cli --config "$CONFIG" run >"$WORK/gateway.log" 2>&1) &
PIDS+=($!)
wait_port "$GW_PORT" 60 || { echo "gateway did not start"; tail -20 "$WORK/gateway.log"; exit 1; }
READY="$(echo "$(date +%s.%N) - $STARTED" | bc)"
wait_port "$SINK_PORT" 10
wait_port "$RELAY_PORT" 10

rate() {  # rate PORT SESSIONS → messages per second
    local started ended
    started="$(date +%s.%N)"
    timeout "$LIMIT_S" "$SOURCE" -s "$2" -m "$MESSAGES" -l "$SIZE" -f alice@agency.gov.au -t bob@example.com \
        127.0.0.1:"$1" >/dev/null 2>&1
    ended="$(date +%s.%N)"
    echo "scale=0; $MESSAGES / ($ended - $started)" | bc
}

rate "$GW_PORT" 10 >/dev/null  # warm up the workers and connections

echo "# SMTP load on loopback: $MESSAGES messages of $SIZE bytes per run; $(nproc) cores"
echo
echo "Gateway ready to accept mail ${READY%????} s after start."
echo
echo "| sessions | smtp-sink alone msg/s | no-scan relay msg/s | gateway msg/s | gateway / relay |"
echo "|---:|---:|---:|---:|---:|"
BEST=0
for s in $SESSIONS; do
    direct="$(rate "$SINK_PORT" "$s")"
    relay="$(rate "$RELAY_PORT" "$s")"
    gateway="$(rate "$GW_PORT" "$s")"
    [ "$gateway" -gt "$BEST" ] && BEST="$gateway"
    echo "| $s | $direct | $relay | $gateway | $(echo "scale=0; 100 * $gateway / $relay" | bc)% |"
done

# Paced load at half the gateway's best rate: per-message latency, relay vs gateway.
HALF=$((BEST / 2))
echo
echo "## Latency at half the gateway's best rate ($HALF msg/s, ${PACED_S} s, 10 sessions, $SIZE-byte messages)"
echo
cd "$REPO" && "$PY" - "$RELAY_PORT" "$GW_PORT" "$HALF" "$PACED_S" "$SIZE" <<'EOF'
import sys, threading, time
from smtplib import SMTP

relay_port, gw_port, rate, seconds, size = (int(a) for a in sys.argv[1:6])
line = "The quarterly planning meeting moves to Thursday at ten in room four. "
body = (line * (size // len(line) + 1))[:size]
raw = ("From: alice@agency.gov.au\r\nTo: bob@example.com\r\nSubject: planning\r\n\r\n"
       + "\r\n".join(body[i:i + 76] for i in range(0, len(body), 76)) + "\r\n").encode()

def paced(port: int) -> list[float]:
    sessions, total = 10, max(1, rate * seconds)
    interval = sessions / max(rate, 1)
    latencies: list[float] = []
    lock = threading.Lock()
    def worker(k: int) -> None:
        with SMTP("127.0.0.1", port, timeout=60) as client:
            client.ehlo()
            next_at = time.perf_counter() + k * interval / sessions
            for _ in range(total // sessions):
                delay = next_at - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                started = time.perf_counter()
                client.sendmail("alice@agency.gov.au", ["bob@example.com"], raw)
                with lock:
                    latencies.append(time.perf_counter() - started)
                next_at += interval
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(sessions)]
    for t in threads: t.start()
    for t in threads: t.join()
    return sorted(latencies)

def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] * 1000

relay, gateway = paced(relay_port), paced(gw_port)
print("| path | messages | p50 ms | p99 ms |")
print("|---|---:|---:|---:|")
print(f"| no-scan relay | {len(relay)} | {pct(relay, .5):.1f} | {pct(relay, .99):.1f} |")
print(f"| gateway | {len(gateway)} | {pct(gateway, .5):.1f} | {pct(gateway, .99):.1f} |")
print(f"| **added by the gateway** | | **{pct(gateway, .5) - pct(relay, .5):.1f}** | **{pct(gateway, .99) - pct(relay, .99):.1f}** |")
EOF
