"""Shared test helpers: a real SMTP sink, free ports, and a gateway in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DLP_SHARED_DIR", REPO.parent / "shared"))
# CI sets this so that a missing system component fails the run instead of skipping.
REQUIRE_ALL = os.environ.get("DLP_REQUIRE_ALL") == "1"


def skip_or_fail(reason: str) -> None:
    """Skip with a reason, or fail when CI requires every component to be present."""
    if REQUIRE_ALL:
        pytest.fail(f"required in CI but unavailable: {reason}")
    pytest.skip(reason)


def shared_dir(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        skip_or_fail(f"shared corpora absent: {path}")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on port {port} after {timeout} s")


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes


@dataclass
class SinkHandler:
    """Records every message; refuses the recipients it is told to."""

    messages: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            self.messages.append(
                Received(
                    str(envelope.mail_from), list(envelope.rcpt_tos), bytes(envelope.original_content or b"")
                )
            )
        return "250 2.0.0 Ok: queued"


class Sink:
    """An aiosmtpd SMTP server on loopback standing in for the next hop."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.handler = SinkHandler()
        self.controller: Controller | None = None

    def start(self) -> Sink:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, enable_SMTPUTF8=True)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.messages)


@dataclass
class GatewayProcess:
    """`dlp-gateway run` in a subprocess, with its settings file."""

    config: Path
    port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> GatewayProcess:
        log = (self.workdir / "gateway.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "--config", str(self.config), "run"],
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        wait_for_port(self.port, timeout, self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway.cli", "--config", str(self.config), *args],
            cwd=self.workdir,
            capture_output=True,
            text=True,
            input=stdin,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            timeout=120,
        )

    def log(self) -> str:
        path = self.workdir / "gateway.log"
        return path.read_text(errors="replace") if path.exists() else ""


def write_settings(workdir: Path, next_hop_port: int, **overrides: Any) -> tuple[Path, int]:
    """A settings file for a test gateway on a free port; returns (path, smtp port)."""
    port = free_port()
    settings: dict[str, Any] = {
        "smtp": {"listen": f"127.0.0.1:{port}"},
        "next_hop": {"url": f"smtp://127.0.0.1:{next_hop_port}", "timeout_s": 10},
        "scan": {"workers": 1, "timeout_s": 60},
        "store_url": f"sqlite:///{workdir / 'var' / 'store.sqlite3'}",
        "internal_domains": ["agency.gov.au"],
        "console": {"enabled": False},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(settings.get(key), dict):
            settings[key] = {**settings[key], **value}
        else:
            settings[key] = value
    path = workdir / "gateway.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path, port


def message(
    subject: str, body: str, sender: str = "alice@agency.gov.au", to: str = "bob@example.com"
) -> bytes:
    """A small synthetic RFC 5322 message with CRLF line endings."""
    lines = [
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {subject}",
        f"Message-ID: <{abs(hash((subject, body)))}@agency.gov.au>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "",
        body,
        "",
    ]
    return "\r\n".join(lines).encode()


PG_ADMIN_URL = os.environ.get("DLP_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def create_pg_database() -> str:
    """A fresh, uniquely named PostgreSQL database; returns its URL (skip/fail if no server)."""
    import secrets

    import psycopg

    name = f"dlp_test_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        skip_or_fail(f"PostgreSQL unreachable at {PG_ADMIN_URL}: {exc}")
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_pg_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
