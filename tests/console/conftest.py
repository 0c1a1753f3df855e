"""Console fixtures: a real uvicorn server for the console, a real SMTP sink as next hop,
held messages put in the store with real scans, and a headless Chromium."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from gateway.accounts import Accounts, Role
from gateway.model import Action, Decision, Envelope, RuleHit
from gateway.relay import NextHop
from gateway.scan import Scanner
from gateway.settings import ConsoleSettings, NextHopSettings, Settings
from gateway.store import Store
from gateway.web import WebContext, build_app
from tests.support import REPO, Sink, free_port, skip_or_fail, wait_for_port

PASSWORD = "correct horse battery staple"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
SCREENSHOTS = REPO / "var" / "screenshots"
USERS = {
    "rita": (Role.REVIEWER, "rita@agency.gov.au"),
    "rob": (Role.REVIEWER, "rob@agency.gov.au"),
    "audrey": (Role.AUDITOR, ""),
    "ada": (Role.ADMIN, ""),
}


@dataclass
class ConsoleServer:
    """The web app of `dlp-gateway run`, served by uvicorn on a free loopback port."""

    settings: Settings
    store: Store
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.store.close()


def start_console(workdir: Path, sink_port: int, **console: Any) -> ConsoleServer:
    """Start the console on its own store; ``console`` overrides console settings."""
    port = free_port()
    base = ConsoleSettings(listen=f"127.0.0.1:{port}", cookie_secure=False)
    settings = Settings(
        store_url=f"sqlite:///{workdir / 'store.sqlite3'}",
        next_hop=NextHopSettings(url=f"smtp://127.0.0.1:{sink_port}", timeout_s=10),
        console=replace(base, **console),
        internal_domains=("agency.gov.au",),
    )
    store = Store(settings.store_url)
    store.migrate()
    accounts = Accounts(store)
    for name, (role, email) in USERS.items():
        accounts.add(name, role, PASSWORD, email)
    hop = NextHop(settings.next_hop.url, settings.next_hop.timeout_s, settings.next_hop.helo)
    app = build_app(WebContext(settings, store, hop))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port(port, 30)
    return ConsoleServer(settings, store, f"http://127.0.0.1:{port}", server, thread)


@pytest.fixture(scope="session")
def scanner() -> Scanner:
    settings = Settings()
    return Scanner.build(settings.detector_config(), settings.limits)


@pytest.fixture
def console(tmp_path: Path, sink: Sink) -> Iterator[ConsoleServer]:
    server = start_console(tmp_path, sink.port)
    yield server
    server.stop()


def hold(
    store: Store,
    scanner: Scanner,
    raw: bytes,
    sender: str = "alice@agency.gov.au",
    recipients: tuple[str, ...] = ("bob@example.com",),
    rules: tuple[str, ...] = ("tax-file-number-external",),
    status: str = "held",
) -> str:
    """Keep a message as the gateway would: real scan, a hold decision by the named rules."""
    envelope = Envelope(sender, recipients)
    scan = scanner.scan(raw)
    hits = [RuleHit(name, Action.HOLD, description=f"{name} fired", guidance="Check it.") for name in rules]
    decision = Decision({r: Action.HOLD for r in recipients}, hits)
    return store.keep(status, raw, envelope, scan, decision)


def mail(subject: str, body: str, sender: str = "alice@agency.gov.au", to: str = "bob@example.com") -> bytes:
    lines = [
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {subject}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "",
        body,
        "",
    ]
    return "\r\n".join(lines).encode()


def login(client: httpx.Client, username: str, password: str = PASSWORD) -> httpx.Response:
    """Sign in through the real login form (its CSRF cookie and field included)."""
    page = client.get("/console/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    return client.post(
        "/console/login", data={"csrf": token.group(1), "username": username, "password": password}
    )


def csrf_of(html: str) -> str:
    token = re.search(r'name="csrf" value="([^"]+)"', html)
    assert token is not None, "no CSRF field on the page"
    return token.group(1)


@pytest.fixture
def client_for(console: ConsoleServer) -> Iterator[Any]:
    clients: list[httpx.Client] = []

    def make(username: str | None = None) -> httpx.Client:
        client = httpx.Client(base_url=console.url, follow_redirects=True, timeout=60)
        clients.append(client)
        if username:
            response = login(client, username)
            assert response.status_code == 200 and "Dashboard" in response.text
        return client

    yield make
    for client in clients:
        client.close()


# Module scope: Playwright's sync API keeps an event loop running in this thread
# while it is open, which would break asyncio.run in tests that come after it.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"Chromium not installed at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("the playwright package is not installed")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    yield tab
    context.close()


def screenshot(tab: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    tab.screenshot(path=str(path), full_page=True)
    return path


def browser_login(tab: Any, base_url: str, username: str, password: str = PASSWORD) -> None:
    tab.goto(f"{base_url}/console/login")
    tab.fill("input[name=username]", username)
    tab.fill("input[name=password]", password)
    tab.click("button[type=submit]")


def wait_until(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")
