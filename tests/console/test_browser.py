"""The console in a real browser (headless Chromium): sign in, filter, open, release, reject;
roles, CSRF, inert HTML mail and lockout.  Screenshots go to var/screenshots/."""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from typing import Any

from gateway.scan import Scanner
from tests.console.conftest import (
    PASSWORD,
    ConsoleServer,
    browser_login,
    hold,
    mail,
    screenshot,
    wait_until,
)
from tests.support import GatewayProcess, Sink, free_port

TFN = "Client tax file number 123 456 782 for the refund."
CARD = "Card 4111 1111 1111 1111 for the booking."


def _send(port: int, raw: bytes, rcpts: list[str]) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        client.sendmail("alice@agency.gov.au", rcpts, raw)


def test_reviewer_filters_opens_releases_to_one_recipient_and_rejects_another(
    sink: Sink, make_gateway: Callable[..., GatewayProcess], page: Any
) -> None:
    web_port = free_port()
    gateway = make_gateway(
        sink.port, console={"enabled": True, "listen": f"127.0.0.1:{web_port}", "cookie_secure": False}
    )
    added = gateway.cli("user", "add", "rita", "--role", "reviewer", stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    _send(
        gateway.port,
        mail("refund", TFN, to="bob@example.com, carol@example.org"),
        ["bob@example.com", "carol@example.org"],
    )
    _send(gateway.port, mail("booking", CARD), ["bob@example.com"])
    assert sink.messages == []
    base = f"http://127.0.0.1:{web_port}"

    browser_login(page, base, "rita")
    page.wait_for_selector("text=awaiting review")
    assert page.locator(".card strong").first.inner_text() == "2"
    assert page.locator("svg.chart rect.bar").count() >= 1
    screenshot(page, "dashboard")

    page.click("nav >> text=Queue")
    page.select_option("select[name=domain]", "example.org")
    page.click("form.filters button[type=submit]")
    rows = page.locator("table.queue tbody tr")
    assert rows.count() == 1 and "refund" in rows.first.inner_text()
    page.goto(f"{base}/console/queue")
    assert page.locator("table.queue tbody tr").count() == 2
    screenshot(page, "queue")

    page.click("table.queue >> text=refund")
    page.wait_for_selector("h2:text('Why it was kept')")
    body = page.locator("pre.body").first.inner_text()
    assert "••• ••• 782" in body and "123 456 782" not in page.content()
    screenshot(page, "message")
    page.uncheck("form[aria-label=Release] input[value='carol@example.org']")
    page.fill("form[aria-label=Release] input[name=reason]", "bob is the client's accountant")
    page.click("form[aria-label=Release] button[type=submit]")
    page.wait_for_selector("text=Released.")
    wait_until(lambda: len(sink.messages) == 1)
    assert sink.messages[0].recipients == ["bob@example.com"]
    assert sink.messages[0].data.startswith(b"X-DLP-Decision: released;")

    page.goto(f"{base}/console/queue?q=booking")
    page.click("table.queue >> text=booking")
    page.fill("form[aria-label=Reject] input[name=reason]", "card numbers may not be emailed")
    page.click("form[aria-label=Reject] button[type=submit]")
    page.wait_for_selector("text=Rejected: it will not be delivered.")
    assert len(sink.messages) == 1
    listed = gateway.cli("held", "list", "--all").stdout
    assert "released" in listed and "rejected" in listed
    assert gateway.cli("audit", "verify").returncode == 0


def test_auditor_sees_no_release_button_and_a_forged_post_is_refused(
    console: ConsoleServer, scanner: Scanner, page: Any
) -> None:
    ident = hold(console.store, scanner, mail("refund", TFN))
    browser_login(page, console.url, "audrey")
    page.goto(f"{console.url}/console/messages/{ident}")
    page.wait_for_selector("h2:text('Why it was kept')")
    assert page.locator("form[aria-label=Release]").count() == 0
    assert page.locator("button:text('Release')").count() == 0
    token = page.locator("form.whoami input[name=csrf]").get_attribute("value")
    forged = page.request.post(
        f"{console.url}/console/messages/{ident}/release",
        form={"csrf": token, "recipients": "bob@example.com"},
    )
    assert forged.status == 403
    assert console.store.get(ident).status == "held"  # type: ignore[union-attr]


def test_a_post_without_the_csrf_token_is_refused(
    console: ConsoleServer, scanner: Scanner, page: Any
) -> None:
    ident = hold(console.store, scanner, mail("refund", TFN))
    browser_login(page, console.url, "rita")
    page.wait_for_selector("text=awaiting review")
    response = page.request.post(f"{console.url}/console/messages/{ident}/reject", form={"reason": "forged"})
    assert response.status == 403
    assert console.store.get(ident).status == "held"  # type: ignore[union-attr]


HOSTILE_HTML = (
    b"From: alice@agency.gov.au\r\nTo: bob@example.com\r\nSubject: newsletter TFN 123 456 782\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"
    b"--b\r\nContent-Type: text/plain\r\n\r\n<script>alert('plain')</script> <img src=http://203.0.113.7/p.png>\r\n"
    b"--b\r\nContent-Type: text/html\r\n\r\n<html><head><link rel=stylesheet href=http://203.0.113.7/s.css>"
    b"</head><body><p>TFN 123 456 782</p><script>alert('html')</script>"
    b"<img src=http://203.0.113.7/track.png><a href=http://203.0.113.7/click>click</a>"
    b"<iframe src=http://203.0.113.7/frame></iframe></body></html>\r\n--b--\r\n"
)


def test_hostile_html_mail_is_inert_text_and_nothing_leaves_the_browser(
    console: ConsoleServer, scanner: Scanner, page: Any
) -> None:
    ident = hold(console.store, scanner, HOSTILE_HTML)
    requests: list[str] = []
    dialogs: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    browser_login(page, console.url, "rita")
    page.goto(f"{console.url}/console/messages/{ident}")
    for summary in page.locator("details summary").all():
        summary.click()
    page.wait_for_timeout(500)
    text = page.locator("main").inner_text()
    assert "<script>alert('plain')</script>" in text
    assert (
        "<script>alert('html')</script>" in text and "/track.png>" in text and "<iframe src=http://" in text
    )
    assert "123 456 782" not in page.content()
    main = page.locator("main")
    assert main.locator("script, img, iframe, link").count() == 0
    assert main.locator("a[href^='http']").count() == 0
    screenshot(page, "message-hostile-html")
    assert dialogs == []
    assert requests and all(url.startswith(console.url) for url in requests), requests


def test_five_wrong_passwords_lock_the_account(console: ConsoleServer, page: Any) -> None:
    for _ in range(4):
        browser_login(page, console.url, "rob", "not the password")
        page.wait_for_selector("text=Wrong username or password.")
    browser_login(page, console.url, "rob", "not the password")
    page.wait_for_selector("text=this account is locked")
    browser_login(page, console.url, "rob", PASSWORD)
    page.wait_for_selector("text=this account is locked")
    assert page.locator("nav >> text=Queue").count() == 0
    actions = [(e.actor, e.action) for e in console.store.audit_trail()]
    assert actions.count(("rob", "login-failed")) == 6 and ("console", "user-locked") in actions
    assert ("rob", "login") not in actions
