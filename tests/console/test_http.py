"""The console over real HTTP (uvicorn on loopback): sessions, CSRF, roles, headers, actions."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa

from gateway.console.tables import sessions
from gateway.scan import Scanner
from tests.console.conftest import ConsoleServer, csrf_of, hold, login, mail
from tests.support import Sink

Client = Callable[..., httpx.Client]


def test_pages_need_a_session(console: ConsoleServer, client_for: Client) -> None:
    anonymous = client_for()
    response = anonymous.get("/console/queue")
    assert response.url.path == "/console/login" and "Sign in" in response.text
    assert anonymous.post("/console/messages/x/reject", data={"reason": "r"}).status_code == 401
    assert anonymous.get("/").url.path == "/console/login"


def test_session_cookie_flags_and_security_headers(console: ConsoleServer, client_for: Client) -> None:
    client = client_for()
    response = login(client, "rita")
    cookie = next(
        h for h in response.history[0].headers.get_list("set-cookie") if h.startswith("dlp_session=")
    )
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    headers = response.headers
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "img-src 'self'" in csp and "script-src 'none'" in csp
    assert headers["x-frame-options"] == "DENY" and headers["cache-control"] == "no-store"
    assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"


def test_secure_cookie_when_configured(tmp_path: object, sink: Sink) -> None:
    from pathlib import Path

    from tests.console.conftest import start_console

    server = start_console(Path(str(tmp_path)), sink.port, cookie_secure=True)
    try:
        with httpx.Client(base_url=server.url) as client:
            page = client.get("/console/login")
            token = csrf_of(page.text)
            # httpx will not send a Secure cookie over http, so pass the login cookie by hand.
            response = client.post(
                "/console/login",
                data={"csrf": token, "username": "rita", "password": "correct horse battery staple"},
                headers={"cookie": f"dlp_login_csrf={page.cookies['dlp_login_csrf']}"},
            )
            cookie = response.headers["set-cookie"]
            assert cookie.startswith("__Host-dlp_session=") and "Secure" in cookie
    finally:
        server.stop()


def test_a_post_without_the_csrf_token_is_refused_and_audited(
    console: ConsoleServer, client_for: Client, scanner: Scanner
) -> None:
    ident = hold(console.store, scanner, mail("x", "TFN 123 456 782"))
    client = client_for("rita")
    refused = client.post(f"/console/messages/{ident}/reject", data={"reason": "forged"})
    assert refused.status_code == 403 and "security token" in refused.text
    wrong = client.post(f"/console/messages/{ident}/reject", data={"reason": "forged", "csrf": "guess"})
    assert wrong.status_code == 403
    assert console.store.get(ident).status == "held"  # type: ignore[union-attr]
    assert [e.action for e in console.store.audit_trail()].count("csrf-refused") == 2


def test_auditor_reads_but_cannot_act(console: ConsoleServer, client_for: Client, scanner: Scanner) -> None:
    ident = hold(console.store, scanner, mail("x", "TFN 123 456 782"))
    client = client_for("audrey")
    page = client.get(f"/console/messages/{ident}")
    assert page.status_code == 200 and "••• ••• 782" in page.text
    assert "/release" not in page.text and "/reveal" not in page.text
    forged = client.post(
        f"/console/messages/{ident}/release", data={"csrf": csrf_of(page.text), "recipients": "x"}
    )
    assert forged.status_code == 403
    assert client.get("/console/users").status_code == 403
    assert console.store.get(ident).status == "held"  # type: ignore[union-attr]
    assert console.store.audit_trail()[-1].action == "forbidden"


def test_idle_session_expires(console: ConsoleServer, client_for: Client) -> None:
    client = client_for("rita")
    assert client.get("/console/queue").url.path == "/console/queue"
    idle = timedelta(seconds=console.settings.console.session_idle_s + 1)
    with console.store.engine.begin() as conn:
        conn.execute(sessions.update().values(last_seen=datetime.now(UTC) - idle))
    assert client.get("/console/queue").url.path == "/console/login"
    with console.store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(sessions)).scalar_one() == 0


def test_absolute_timeout_ends_an_active_session(console: ConsoleServer, client_for: Client) -> None:
    client = client_for("rita")
    old = datetime.now(UTC) - timedelta(seconds=console.settings.console.session_absolute_s + 1)
    with console.store.engine.begin() as conn:
        conn.execute(sessions.update().values(created_at=old))
    assert client.get("/console/").url.path == "/console/login"


def test_logout_ends_the_session(console: ConsoleServer, client_for: Client) -> None:
    client = client_for("rita")
    page = client.get("/console/")
    assert client.post("/console/logout", data={"csrf": csrf_of(page.text)}).url.path == "/console/login"
    assert client.get("/console/queue").url.path == "/console/login"
    assert "logout" in [e.action for e in console.store.audit_trail()]


def test_reject_with_notice_note_assign_and_history(
    console: ConsoleServer, client_for: Client, scanner: Scanner
) -> None:
    ident = hold(console.store, scanner, mail("x", "TFN 123 456 782"))
    client = client_for("rita")
    token = csrf_of(client.get(f"/console/messages/{ident}").text)
    no_reason = client.post(f"/console/messages/{ident}/reject", data={"csrf": token, "reason": " "})
    assert no_reason.status_code == 200 and "reason is required" in no_reason.text
    client.post(f"/console/messages/{ident}/note", data={"csrf": token, "text": "called the sender"})
    client.post(f"/console/messages/{ident}/assign", data={"csrf": token, "assignee": "rob"})
    done = client.post(
        f"/console/messages/{ident}/reject", data={"csrf": token, "reason": "personal data", "notify": "yes"}
    )
    assert "Rejected" in done.text and "called the sender" in done.text
    assert console.store.get(ident).status == "rejected"  # type: ignore[union-attr]
    trail = console.store.audit_trail(ident)
    assert [e.action for e in trail] == ["held", "note", "assigned", "rejected"]
    assert trail[-1].detail == {"reason": "personal data", "notify_sender": True}


def test_reveal_and_download_need_a_reason_and_are_audited(
    console: ConsoleServer, client_for: Client, scanner: Scanner
) -> None:
    raw = mail("x", "TFN 123 456 782")
    ident = hold(console.store, scanner, raw)
    client = client_for("rita")
    page = client.get(f"/console/messages/{ident}")
    assert "123 456 782" not in page.text
    token = csrf_of(page.text)
    assert "123 456 782" not in client.post(f"/console/messages/{ident}/reveal", data={"csrf": token}).text
    shown = client.post(
        f"/console/messages/{ident}/reveal", data={"csrf": token, "reason": "false positive?"}
    )
    assert "123 456 782" in shown.text and shown.headers["cache-control"] == "no-store"
    assert "123 456 782" not in client.get(f"/console/messages/{ident}").text  # masked again
    got = client.post(f"/console/messages/{ident}/download", data={"csrf": token, "reason": "legal hold"})
    assert got.content == raw and got.headers["content-type"] == "application/octet-stream"
    assert "attachment" in got.headers["content-disposition"]
    revealed = [(e.action, e.detail) for e in console.store.audit_trail(ident)][1:]
    assert revealed == [("revealed", {"reason": "false positive?"}), ("downloaded", {"reason": "legal hold"})]


def test_four_eyes_release_over_http(
    console: ConsoleServer, client_for: Client, scanner: Scanner, sink: Sink
) -> None:
    raw = mail("PROTECTED budget", "PROTECTED\r\n\r\nTFN 123 456 782\r\n\r\nPROTECTED")
    ident = hold(console.store, scanner, raw, sender="carol@agency.gov.au")
    rita, rob = client_for("rita"), client_for("rob")
    token = csrf_of(rita.get(f"/console/messages/{ident}").text)
    early = rita.post(
        f"/console/messages/{ident}/release", data={"csrf": token, "recipients": "bob@example.com"}
    )
    assert early.status_code == 409 and "approve it first" in early.text
    rita.post(f"/console/messages/{ident}/approve", data={"csrf": token, "reason": "business need confirmed"})
    again = rita.post(
        f"/console/messages/{ident}/release", data={"csrf": token, "recipients": "bob@example.com"}
    )
    assert again.status_code == 409 and sink.messages == []
    rob_token = csrf_of(rob.get(f"/console/messages/{ident}").text)
    rob.post(f"/console/messages/{ident}/release", data={"csrf": rob_token, "recipients": "bob@example.com"})
    assert [m.recipients for m in sink.messages] == [["bob@example.com"]]
    actions = [(e.actor, e.action) for e in console.store.audit_trail(ident)]
    assert actions == [("gateway", "held"), ("rita", "approved"), ("rob", "releasing"), ("rob", "released")]


def test_bulk_reject_needs_reason_and_confirmation(
    console: ConsoleServer, client_for: Client, scanner: Scanner
) -> None:
    idents = [hold(console.store, scanner, mail(f"m{i}", "TFN 123 456 782")) for i in range(3)]
    client = client_for("rob")
    token = csrf_of(client.get("/console/queue").text)
    form = {"csrf": token, "action": "reject", "ids": idents[:2]}
    step_one = client.post("/console/queue/bulk", data=form)
    assert "Reject 2 messages?" in step_one.text
    unconfirmed = client.post("/console/queue/bulk/apply", data={**form, "reason": "spam run"})
    assert unconfirmed.status_code == 400
    done = client.post("/console/queue/bulk/apply", data={**form, "reason": "spam run", "confirm": "yes"})
    assert done.text.count("rejected") >= 2
    statuses = [console.store.get(i).status for i in idents]  # type: ignore[union-attr]
    assert statuses == ["rejected", "rejected", "held"]
    bulk = console.store.audit_trail()[-1]
    assert bulk.action == "bulk-reject" and bulk.detail["done"] == 2


def test_queue_filters_and_audit_export(console: ConsoleServer, client_for: Client, scanner: Scanner) -> None:
    a = hold(console.store, scanner, mail("alpha", "TFN 123 456 782"), recipients=("x@gmail.com",))
    b = hold(
        console.store, scanner, mail("beta", "card 4111 1111 1111 1111"), rules=("payment-card-external",)
    )
    client = client_for("audrey")
    by_rule = client.get("/console/queue", params={"rule": "payment-card-external"}).text
    assert f"/messages/{b}" in by_rule and f"/messages/{a}" not in by_rule
    by_domain = client.get("/console/queue", params={"domain": "gmail.com"}).text
    assert f"/messages/{a}" in by_domain and f"/messages/{b}" not in by_domain
    searched = client.get("/console/queue", params={"q": "beta"}).text
    assert f"/messages/{b}" in searched and f"/messages/{a}" not in searched
    assert "No messages match" in client.get("/console/queue", params={"age": "7d"}).text
    exported = client.get("/console/audit/export", params={"format": "json", "action": "held"})
    rows = [json.loads(line) for line in exported.text.splitlines()]
    assert [r["message"] for r in rows] == [a, b] and all(len(r["hash"]) == 64 for r in rows)
    csv_text = client.get("/console/audit/export", params={"format": "csv"}).text
    assert csv_text.startswith("seq,at,actor,action,message,detail,prev_hash,hash")
    assert console.store.audit_trail()[-1].action == "audit-exported"
    dashboard = client.get("/console/").text
    assert "<svg" in dashboard and "payment-card-external" in dashboard


def test_admin_manages_accounts(console: ConsoleServer, client_for: Client) -> None:
    client = client_for("ada")
    token = csrf_of(client.get("/console/users").text)
    added = client.post(
        "/console/users",
        data={"csrf": token, "username": "newbie", "role": "auditor", "password": "a long enough password"},
    )
    assert "newbie" in added.text
    client.post("/console/users/newbie", data={"csrf": token, "change": "role", "role": "reviewer"})
    assert console.store.audit_trail()[-1].detail == {"username": "newbie", "role": "reviewer"}
    assert "store_url" in client.get("/console/settings").text
