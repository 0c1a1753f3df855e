"""The store on SQLite and on a real PostgreSQL server: durability, transitions, audit chain."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from gateway.model import Action, Decision, Envelope, Finding, RuleHit, ScanResult
from gateway.store import Store


def _scan() -> ScanResult:
    finding = Finding("AU_TFN", 0.95, "body", "••• ••• 782", attributes={"kind": "9-digit"})
    return ScanResult([finding], [], [], "refund", "<m1@agency.gov.au>", {}, 100)


def _decision() -> Decision:
    return Decision({"bob@example.com": Action.HOLD}, [RuleHit("tfn", Action.HOLD, "TFN out", "Ask first")])


def _keep(store: Store) -> str:
    envelope = Envelope("alice@agency.gov.au", ("bob@example.com",), ("BODY=8BITMIME",), (("NOTIFY=NEVER",),))
    return store.keep("held", b"raw message bytes\r\n", envelope, _scan(), _decision())


def test_kept_message_round_trips(store_url: str) -> None:
    store = Store(store_url)
    store.migrate()
    store.migrate()  # idempotent: every start runs it
    ident = _keep(store)
    reopened = Store(store_url)  # a new engine, as after a restart
    message = reopened.get(ident)
    assert message is not None
    assert message.raw == b"raw message bytes\r\n"
    assert message.status == "held" and message.decision == "hold"
    assert message.envelope == Envelope(
        "alice@agency.gov.au", ("bob@example.com",), ("BODY=8BITMIME",), (("NOTIFY=NEVER",),)
    )
    assert message.findings[0].excerpt == "••• ••• 782"
    assert message.findings[0].attributes == {"kind": "9-digit"}
    assert message.rules[0]["guidance"] == "Ask first"
    assert [m.id for m in reopened.list_messages(("held",))] == [ident]
    assert reopened.list_messages(("released",)) == []


def test_transition_is_compare_and_set(store_url: str) -> None:
    store = Store(store_url)
    store.migrate()
    ident = _keep(store)
    results: list[bool] = []

    def claim() -> None:
        results.append(store.transition(ident, ("held",), "releasing", "reviewer", {}))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]
    assert store.get(ident).status == "releasing"  # type: ignore[union-attr]


def test_audit_chain_detects_tampering(store_url: str) -> None:
    store = Store(store_url)
    store.migrate()
    ident = _keep(store)
    store.transition(ident, ("held",), "rejected", "reviewer", {"reason": "no"})
    store.record("admin", "login", None, {"ok": True})
    assert store.verify_audit() == []
    assert [e.action for e in store.audit_trail()] == ["held", "rejected", "login"]
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit SET actor = 'someone-else' WHERE action = 'rejected'"))
    problems = store.verify_audit()
    assert len(problems) == 1 and "does not match its hash" in problems[0]


def test_audit_never_holds_values(store_url: str) -> None:
    store = Store(store_url)
    store.migrate()
    _keep(store)
    detail = store.audit_trail()[0].detail
    assert detail["entities"] == {"AU_TFN": 1}
    assert "782" not in str(detail)
