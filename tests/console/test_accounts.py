"""Accounts: argon2 hashes, roles, lockout with growing back-off, audit of every attempt."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from gateway.accounts import AccountError, Accounts, LockoutPolicy, Role
from gateway.console.tables import users
from gateway.store import Store
from tests.support import REPO

PASSWORD = "correct horse battery staple"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    store.migrate()
    return store


def test_password_is_stored_as_argon2_hash_only(store: Store) -> None:
    Accounts(store).add("Rita", Role.REVIEWER, PASSWORD, "Rita@Agency.gov.au")
    with store.engine.connect() as conn:
        row = conn.execute(users.select()).mappings().one()
    assert row["username"] == "rita" and row["email"] == "rita@agency.gov.au"
    assert row["password_hash"].startswith("$argon2id$") and PASSWORD not in row["password_hash"]
    assert [e.action for e in store.audit_trail()] == ["user-added"]


def test_short_password_duplicate_name_and_bad_role_are_refused(store: Store) -> None:
    accounts = Accounts(store)
    with pytest.raises(AccountError, match="at least 12"):
        accounts.add("rita", Role.REVIEWER, "short")
    accounts.add("rita", Role.REVIEWER, PASSWORD)
    with pytest.raises(AccountError, match="already exists"):
        accounts.add("RITA", Role.ADMIN, PASSWORD)
    with pytest.raises(AccountError, match="unknown role"):
        Role.parse("superuser")
    with pytest.raises(AccountError, match="username"):
        accounts.add("rita<script>", Role.REVIEWER, PASSWORD)


def test_five_failures_lock_with_growing_back_off_and_every_attempt_is_audited(store: Store) -> None:
    accounts = Accounts(store, LockoutPolicy(threshold=5, base_s=60, max_s=3600))
    accounts.add("rita", Role.REVIEWER, PASSWORD)
    for _ in range(4):
        assert accounts.authenticate("rita", "wrong password!", "127.0.0.1").reason == "bad-credentials"
    assert accounts.authenticate("rita", "wrong password!", "127.0.0.1").reason == "locked"
    first = accounts.get("rita")
    assert first is not None and first.locked_until is not None
    assert timedelta(seconds=50) < first.locked_until - datetime.now(UTC) <= timedelta(seconds=60)
    # Locked: even the right password is refused, and says so.
    assert accounts.authenticate("rita", PASSWORD, "127.0.0.1").reason == "locked"
    # Let the lock run out; five more failures lock for twice as long.
    with store.engine.begin() as conn:
        conn.execute(users.update().values(locked_until=datetime.now(UTC) - timedelta(seconds=1)))
    for _ in range(5):
        accounts.authenticate("rita", "still wrong!!", "127.0.0.1")
    second = accounts.get("rita")
    assert second is not None and second.locked_until is not None and second.lockouts == 2
    assert timedelta(seconds=110) < second.locked_until - datetime.now(UTC) <= timedelta(seconds=120)
    actions = [e.action for e in store.audit_trail()]
    assert actions.count("login-failed") == 11 and actions.count("user-locked") == 2
    assert all(PASSWORD not in str(e.detail) and "wrong" not in str(e.detail) for e in store.audit_trail())


def test_successful_login_resets_the_counter_and_is_audited(store: Store) -> None:
    accounts = Accounts(store)
    accounts.add("rita", Role.REVIEWER, PASSWORD)
    accounts.authenticate("rita", "nope nope nope", "10.0.0.1")
    result = accounts.authenticate("RITA ", PASSWORD, "10.0.0.1")
    assert result.reason == "ok" and result.user is not None and result.user.failed_logins == 0
    last = store.audit_trail()[-1]
    assert (last.actor, last.action, last.detail) == ("rita", "login", {"client": "10.0.0.1"})


def test_unknown_user_and_disabled_user_are_refused(store: Store) -> None:
    accounts = Accounts(store)
    accounts.add("rita", Role.REVIEWER, PASSWORD)
    assert accounts.authenticate("nobody", PASSWORD, "").reason == "bad-credentials"
    accounts.set_disabled("rita", True, "ada")
    assert accounts.authenticate("rita", PASSWORD, "").reason == "disabled"


def test_cli_user_add_reads_the_password_from_stdin(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    config.write_text(yaml.safe_dump({"store_url": url}))

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway.cli", "--config", str(config), *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
            timeout=120,
        )

    added = cli("user", "add", "audrey", "--role", "auditor", stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert "added audrey (auditor)" in added.stdout
    assert cli("user", "add", "audrey", "--role", "auditor", stdin=PASSWORD + "\n").returncode == 1
    assert cli("user", "add", "bob", "--role", "auditor", stdin="short\n").returncode == 1
    assert cli("user", "add", "bob", "--role", "root", stdin=PASSWORD + "\n").returncode == 2
    listed = cli("user", "list").stdout
    assert "audrey" in listed and "auditor" in listed and "bob" not in listed
    store = Store(url)
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(users.c.password_hash)).scalar_one().startswith("$argon2id$")
    accounts = Accounts(store)
    assert accounts.authenticate("audrey", PASSWORD, "").reason == "ok"
