"""Who may release what: separation of duties and four eyes, over real stored messages."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from gateway.accounts import Accounts, Role
from gateway.console import casework
from gateway.scan import Scanner
from gateway.settings import ConsoleSettings
from gateway.store import Store
from tests.console.conftest import PASSWORD, hold, mail


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    store.migrate()
    accounts = Accounts(store)
    accounts.add("alice", Role.REVIEWER, PASSWORD, "alice@agency.gov.au")
    accounts.add("rob", Role.REVIEWER, PASSWORD, "rob@agency.gov.au")
    accounts.add("rita", Role.REVIEWER, PASSWORD)
    return store


def test_a_reviewer_cannot_release_their_own_message(store: Store, scanner: Scanner) -> None:
    ident = hold(store, scanner, mail("x", "TFN 123 456 782"), sender="alice@agency.gov.au")
    message = store.get(ident)
    assert message is not None
    accounts, console = Accounts(store), ConsoleSettings()
    alice, rob, rita = (accounts.get(n) for n in ("alice", "rob", "rita"))
    assert alice and rob and rita
    assert "separation of duties" in casework.release_refusal(
        alice, message, console, ("agency.gov.au",), None
    )
    assert casework.release_refusal(rob, message, console, ("agency.gov.au",), None) == ""
    # No e-mail on file: the username matches the sender's local part at an internal domain.
    own = store.get(hold(store, scanner, mail("y", "TFN 123 456 782"), sender="rita@agency.gov.au"))
    assert own is not None
    assert casework.release_refusal(rita, own, console, ("agency.gov.au",), None) != ""
    off = replace(console, separation_of_duties=False)
    assert casework.release_refusal(alice, message, off, ("agency.gov.au",), None) == ""


def test_protected_mail_needs_an_approval_then_a_different_releaser(store: Store, scanner: Scanner) -> None:
    raw = mail("PROTECTED budget", "PROTECTED\r\n\r\nTFN 123 456 782\r\n\r\nPROTECTED")
    message = store.get(hold(store, scanner, raw, sender="carol@agency.gov.au"))
    assert message is not None
    console, domains = ConsoleSettings(), ("agency.gov.au",)
    assert casework.needs_four_eyes(message, console)
    rob, rita = Accounts(store).get("rob"), Accounts(store).get("rita")
    assert rob and rita
    assert "approve it first" in casework.release_refusal(rob, message, console, domains, None)
    casework.approve(store, message.id, "rob", "checked with the sender's manager")
    with pytest.raises(casework.CaseworkError):
        casework.approve(store, message.id, "rita", "again")
    approval = casework.load(store, message.id).approval
    assert approval is not None and approval.approver == "rob"
    assert "different reviewer" in casework.release_refusal(rob, message, console, domains, approval)
    assert casework.release_refusal(rita, message, console, domains, approval) == ""
    assert [e.action for e in store.audit_trail(message.id)] == ["held", "approved"]


def test_plain_official_mail_needs_one_reviewer_unless_its_rule_is_listed(
    store: Store, scanner: Scanner
) -> None:
    message = store.get(hold(store, scanner, mail("x", "TFN 123 456 782"), rules=("payment-card-external",)))
    assert message is not None
    assert not casework.needs_four_eyes(message, ConsoleSettings())
    assert casework.needs_four_eyes(message, ConsoleSettings(four_eyes_rules=("payment-card-external",)))
    assert not casework.needs_four_eyes(message, ConsoleSettings(four_eyes_marking=""))


def test_notes_and_assignments_are_kept_and_audited_without_their_text(
    store: Store, scanner: Scanner
) -> None:
    ident = hold(store, scanner, mail("x", "TFN 123 456 782"))
    casework.add_note(store, ident, "rob", "Sender says TFN 123 456 782 is the client's own")
    casework.assign(store, ident, "rita", "rob")
    work = casework.load(store, ident)
    assert (
        [n.author for n in work.notes] == ["rob"] and work.assignment and work.assignment.assignee == "rita"
    )
    trail = store.audit_trail(ident)
    assert [e.action for e in trail] == ["held", "note", "assigned"]
    assert "123 456 782" not in str([e.detail for e in trail])
    with pytest.raises(casework.CaseworkError):
        casework.add_note(store, ident, "rob", "   ")
