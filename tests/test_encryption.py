"""Encryption at rest, on SQLite and on a real PostgreSQL server: a stolen database holds
no message content, every reader (store, outbox, confirm ledger, console, CLI) still
sees everything, rows cannot be swapped or altered unnoticed, the wrong key is a
clear error, old plaintext rows are read and re-encrypted, and keys rotate."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import smtplib
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from gateway.confirm import ledger
from gateway.console import casework
from gateway.console.dashboard import load_dashboard
from gateway.console.queue import QueueFilter, load_queue
from gateway.model import Action, Decision, Envelope, Finding, RuleHit, ScanResult
from gateway.outbox import NewJob, Outbox
from gateway.settings import EncryptionSettings, SettingsError, load_settings
from gateway.store import CryptoError, Store
from gateway.store.crypto import MAGIC, TEXT_PREFIX, BadKey, Key, Keyring, Slot, new_key_text
from gateway.store.sealed import SEALED, key_usage
from tests.support import REPO, GatewayProcess, Sink, message, write_settings

TFN = "123 456 782"  # synthetic, valid checksum
EXCERPT = "••• ••• 782"
# What an unencrypted store holds of the message (the excerpt as JSON writes it).
SECRETS = [TFN.encode(), b"Quillfeather", b"garden party", json.dumps(EXCERPT)[1:-1].encode()]
OTHER_FORMS = [b"123456782", EXCERPT.encode()]
BODY = f"Client Ms Quillfeather, tax file number {TFN}, asked about the garden party refund."
KEY_A = Key.from_secret(bytes(range(32)))
KEY_B = Key.from_secret(bytes(range(32, 64)))


def _text(key: Key) -> str:
    return base64.b64encode(key.secret).decode()


# -- the format, without a database --------------------------------------------------


def test_values_carry_version_key_id_and_a_fresh_nonce() -> None:
    ring = Keyring(KEY_A)
    slot = Slot("messages", "raw", "m1")
    one, two = ring.seal(b"hello", slot), ring.seal(b"hello", slot)
    assert one.startswith(MAGIC + b"\x01" + bytes.fromhex(KEY_A.id))
    assert one != two  # random nonce: equal plaintexts do not show as equal
    assert ring.open(one, slot) == ring.open(two, slot) == b"hello"
    text = ring.seal_text("Quillfeather", Slot("messages", "subject", "m1"))
    assert text.startswith(f"{TEXT_PREFIX}{KEY_A.id}:") and "Quillfeather" not in text
    assert ring.open_text(text, Slot("messages", "subject", "m1")) == "Quillfeather"


def test_a_value_cannot_move_to_another_row_or_column() -> None:
    ring = Keyring(KEY_A)
    sealed = ring.seal(b"body of m1", Slot("messages", "raw", "m1"))
    with pytest.raises(CryptoError, match="failed authentication"):
        ring.open(sealed, Slot("messages", "raw", "m2"))
    with pytest.raises(CryptoError, match="failed authentication"):
        ring.open(sealed, Slot("outbox", "raw", "m1"))
    text = ring.seal_text("subject of m1", Slot("messages", "subject", "m1"))
    with pytest.raises(CryptoError, match="failed authentication"):
        ring.open_text(text, Slot("messages", "findings", "m1"))


@pytest.mark.parametrize("position", [5, 9, 30, -1])  # key id, nonce, ciphertext, tag
def test_any_altered_byte_is_refused(position: int) -> None:
    ring, slot = Keyring(KEY_A), Slot("messages", "raw", "m1")
    sealed = bytearray(ring.seal(b"x" * 40, slot))
    sealed[position] ^= 0x01
    with pytest.raises(CryptoError):
        ring.open(bytes(sealed), slot)


def test_wrong_key_names_the_key_it_needs_and_never_the_secret() -> None:
    sealed = Keyring(KEY_A).seal(b"held mail", Slot("messages", "raw", "m1"))
    with pytest.raises(CryptoError) as caught:
        Keyring(KEY_B).open(sealed, Slot("messages", "raw", "m1"))
    assert f"key {KEY_A.id}, which is not configured (configured: {KEY_B.id})" in str(caught.value)
    assert _text(KEY_A) not in str(caught.value) and _text(KEY_B) not in str(caught.value)
    assert _text(KEY_A) not in repr(KEY_A)


def test_keys_in_base64_urlsafe_or_hex_are_the_same_key() -> None:
    secret = os.urandom(32)
    forms = [
        base64.b64encode(secret).decode(),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
        secret.hex(),
    ]
    assert {Key.parse(f, "test").id for f in forms} == {Key.from_secret(secret).id}
    assert len(base64.b64decode(new_key_text())) == 32


@pytest.mark.parametrize("bad", ["CHANGE-ME", base64.b64encode(b"k" * 16).decode(), "zz" * 32, ""])
def test_a_bad_key_is_refused_without_echoing_it(bad: str) -> None:
    with pytest.raises(BadKey, match="DLP_GATEWAY_ENCRYPTION_KEY: not a 256-bit key") as caught:
        Key.parse(bad, "DLP_GATEWAY_ENCRYPTION_KEY")
    assert not bad or bad not in str(caught.value)


def test_plaintext_is_read_until_read_plaintext_is_switched_off() -> None:
    slot = Slot("messages", "subject", "m1")
    assert Keyring(KEY_A).open_text("legacy subject", slot) == "legacy subject"
    with pytest.raises(CryptoError, match="read_plaintext is off"):
        Keyring(KEY_A, read_plaintext=False).open_text("legacy subject", slot)


# -- settings ------------------------------------------------------------------------


def test_key_comes_from_the_environment_or_the_settings_file() -> None:
    assert not EncryptionSettings().keyring({}).enabled
    from_env = EncryptionSettings().keyring({"DLP_GATEWAY_ENCRYPTION_KEY": _text(KEY_A)})
    from_file = EncryptionSettings(key=KEY_A.secret.hex()).keyring({})
    assert from_env.current == from_file.current == KEY_A
    rotated = EncryptionSettings(old_keys=(_text(KEY_A),)).keyring(
        {"DLP_GATEWAY_ENCRYPTION_KEY": _text(KEY_B), "DLP_GATEWAY_ENCRYPTION_OLD_KEYS": ""}
    )
    assert rotated.ids == [KEY_B.id, KEY_A.id]
    env_old = EncryptionSettings(key=_text(KEY_B)).keyring({"DLP_GATEWAY_ENCRYPTION_OLD_KEYS": _text(KEY_A)})
    assert env_old.ids == [KEY_B.id, KEY_A.id]
    with pytest.raises(SettingsError, match="differ"):
        EncryptionSettings(key=_text(KEY_A)).keyring({"DLP_GATEWAY_ENCRYPTION_KEY": _text(KEY_B)})
    with pytest.raises(SettingsError, match="DLP_GATEWAY_ENCRYPTION_KEY: not a 256-bit key"):
        EncryptionSettings().keyring({"DLP_GATEWAY_ENCRYPTION_KEY": "CHANGE-ME"})


def test_a_bad_key_in_the_settings_file_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text("encryption:\n  old_keys: ['not-a-key']\n")
    with pytest.raises(SettingsError, match=r"'encryption\.old_keys' item 1: not a 256-bit key"):
        load_settings(path)


# -- the store -----------------------------------------------------------------------


def _keep(store: Store, body: str = BODY) -> str:
    finding = Finding("AU_TFN", 0.95, "body", "••• ••• 782", attributes={"kind": "9-digit"})
    in_subject = Finding("AU_TFN", 0.95, "subject", "••• ••• 782")
    scan = ScanResult(
        [finding, in_subject], [], [], f"Quillfeather refund {TFN}", "<m1@agency.gov.au>", {}, 100
    )
    hit = RuleHit("tfn", Action.HOLD, "TFN out", "Ask first", findings=(finding,))
    decision = Decision({"bob@example.com": Action.HOLD}, [hit])
    envelope = Envelope("alice@agency.gov.au", ("bob@example.com",))
    return store.keep("held", message("refund", body), envelope, scan, decision)


def _fill(store: Store) -> dict[str, str]:
    """One of everything the store keeps content in: a held message, a notice in the
    outbox, a confirmation, a reviewer's note."""
    ident = _keep(store)
    notice = NewJob("notice:warn", "dlp@agency.gov.au", ("alice@agency.gov.au",), raw=message("n", BODY))
    job = Outbox(store).add(notice)
    with store.engine.begin() as conn:
        token = ledger.open_confirmation(
            conn, ident, "alice@agency.gov.au", "Quillfeather refund", 3600, store.keyring
        )
    casework.add_note(store, ident, "rob", f"Quillfeather called: TFN {TFN} is hers")
    return {"message": ident, "job": job, "token": token}


def _stolen(store: Store, url: str) -> bytes:
    """What a thief gets: the SQLite files' bytes, or every row of every table."""
    if url.startswith("sqlite:///"):
        store.close()
        path = Path(url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    dump = b""
    with store.engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):
                dump += b"".join(
                    bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode() for v in row
                )
    return dump


def _everything_reads(store: Store, made: dict[str, str]) -> None:
    """The store, outbox, confirm ledger and console see the plaintext."""
    kept = store.get(made["message"])
    assert kept is not None and BODY.encode() in kept.raw
    assert kept.subject == f"Quillfeather refund {TFN}"
    assert kept.findings[0].excerpt == "••• ••• 782"
    assert kept.rules[0]["findings"][0]["excerpt"] == "••• ••• 782"
    assert kept.subject in [m.subject for m in store.list_messages()]
    (job,) = Outbox(store).claim_due(10)
    assert job.id == made["job"] and BODY.encode() in job.body
    with store.engine.connect() as conn:
        found = ledger.find(conn, made["token"], store.keyring)
    assert found is not None and found.subject == "Quillfeather refund"
    assert casework.load(store, made["message"]).notes[0].text == f"Quillfeather called: TFN {TFN} is hers"
    queue = load_queue(store, QueueFilter(), 50)
    assert {i.subject for i in queue.items} == {"Quillfeather refund ••• ••• 782"}
    assert {r for i in queue.items for r in i.rules} == {"tfn"}
    dashboard = load_dashboard(store, UTC)
    assert [name for name, _ in dashboard.top_rules] == ["tfn"]
    assert dashboard.oldest is not None and "Quillfeather" in str(dashboard.oldest.subject)


def test_a_stolen_database_holds_no_content_yet_everything_reads(store_url: str) -> None:
    store = Store(store_url, Keyring(KEY_A))
    store.migrate()
    made = _fill(store)
    _everything_reads(store, made)
    stolen = _stolen(store, store_url)
    assert made["message"].encode() in stolen  # the dump is real: ids are there in clear
    assert [s for s in SECRETS + OTHER_FORMS if s in stolen] == []


def test_without_a_key_the_same_database_does_leak(store_url: str) -> None:
    """The control: the check above would catch content stored unencrypted."""
    store = Store(store_url)
    store.migrate()
    made = _fill(store)
    _everything_reads(store, made)
    stolen = _stolen(store, store_url)
    assert [s for s in SECRETS if s in stolen] == SECRETS


def test_swapped_or_altered_rows_are_refused(store_url: str) -> None:
    store = Store(store_url, Keyring(KEY_A))
    store.migrate()
    first, second = _keep(store), _keep(store, "another message entirely")
    with store.engine.begin() as conn:
        raws = dict(conn.execute(sa.text("SELECT id, raw FROM messages")).all())
        swap = sa.text("UPDATE messages SET raw = :raw WHERE id = :id")
        conn.execute(swap, {"raw": raws[second], "id": first})
    with pytest.raises(CryptoError, match=f"messages.raw of {first}: failed authentication"):
        store.get(first)
    altered = bytearray(raws[second])
    altered[-20] ^= 0x01
    with store.engine.begin() as conn:
        conn.execute(swap, {"raw": bytes(altered), "id": second})
    with pytest.raises(CryptoError, match="failed authentication"):
        store.get(second)


def test_an_altered_notice_is_never_delivered_and_stays_queued(store_url: str) -> None:
    store = Store(store_url, Keyring(KEY_A))
    store.migrate()
    outbox = Outbox(store)
    job = outbox.add(NewJob("notice:warn", "dlp@agency.gov.au", ("alice@agency.gov.au",), raw=b"notice"))
    with store.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE outbox SET raw = :raw WHERE id = :id"), {"raw": b"forged notice", "id": job}
        )
    strict = Outbox(Store(store_url, Keyring(KEY_A, read_plaintext=False)))
    assert strict.claim_due(10) == []  # refused: not delivered ...
    assert outbox.state(job) == "delivering"  # ... and not lost: its lease runs out, it is tried again


def test_wrong_key_refuses_to_open_the_store(store_url: str) -> None:
    store = Store(store_url, Keyring(KEY_A))
    store.migrate()
    ident = _keep(store)
    for keyring in (Keyring(KEY_B), Keyring()):
        other = Store(store_url, keyring)
        with pytest.raises(CryptoError, match=f"not configured: {KEY_A.id} \\(1 rows\\)"):
            other.migrate()
        with pytest.raises(CryptoError, match=f"key {KEY_A.id}, which is not configured"):
            other.get(ident)
        other.close()


def test_old_plaintext_rows_are_read_then_rekeyed(store_url: str) -> None:
    plain = Store(store_url)
    plain.migrate()
    made = _fill(plain)  # written before encryption was switched on
    store = Store(store_url, Keyring(KEY_A))
    store.migrate()
    newer = _keep(store)
    assert store.get(made["message"]) is not None and store.get(newer) is not None
    usage = {(u.table, u.key): u.rows for u in key_usage(store.engine)}
    assert usage[("messages", None)] == 1 and usage[("messages", KEY_A.id)] == 1
    report = store.rekey(batch=1)
    assert report.resealed == 4 and report.current == 1 and not report.failed
    assert {u.key for u in key_usage(store.engine)} == {KEY_A.id}
    assert store.rekey().resealed == 0  # nothing left to do
    _everything_reads(Store(store_url, Keyring(KEY_A, read_plaintext=False)), made)
    assert [s for s in SECRETS + OTHER_FORMS if s in _stolen(store, store_url)] == []


def test_rotation_reads_under_both_keys_then_rekeys_to_the_new_one(store_url: str) -> None:
    old = Store(store_url, Keyring(KEY_A))
    old.migrate()
    made = _fill(old)
    rotated = Store(store_url, Keyring(KEY_B, [KEY_A]))
    rotated.migrate()
    assert rotated.get(made["message"]) is not None
    assert rotated.rekey().resealed == len(SEALED)
    only_new = Store(store_url, Keyring(KEY_B))
    only_new.migrate()  # no value is left under the old key
    _everything_reads(only_new, made)
    with pytest.raises(CryptoError, match=KEY_B.id):
        Store(store_url, Keyring(KEY_A)).migrate()


def test_the_gateway_warns_without_a_key_and_rekeys_in_the_background(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.store")
    plain = Store(store_url)
    plain.migrate()
    ident = _keep(plain)
    asyncio.run(plain.maintain_encryption(0.05, 10))  # returns at once: nothing to maintain
    assert "encryption at rest is off" in caplog.text

    async def run_until_rekeyed(store: Store) -> None:
        task = asyncio.create_task(store.maintain_encryption(0.05, 10))
        for _ in range(200):
            if {u.key for u in key_usage(store.engine)} == {KEY_A.id}:
                break
            await asyncio.sleep(0.05)
        task.cancel()

    store = Store(store_url, Keyring(KEY_A))
    asyncio.run(run_until_rekeyed(store))
    assert {u.key for u in key_usage(store.engine)} == {KEY_A.id}
    assert f"encryption at rest on, current key {KEY_A.id}" in caplog.text
    assert store.get(ident) is not None


# -- the CLI and the running gateway ---------------------------------------------------


def _cli(config: Path, *args: str, key: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLP_GATEWAY_ENCRYPTION")}
    if key is not None:
        env["DLP_GATEWAY_ENCRYPTION_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(REPO)},
        timeout=120,
        cwd=config.parent,
    )


def test_cli_reads_with_the_key_and_refuses_without_it(store_url: str, tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump({"store_url": store_url, "encryption": {"rekey_batch": 5}}))
    store = Store(store_url, Keyring(KEY_A))
    store.migrate()
    ident = _keep(store)
    store.close()
    shown = _cli(config, "held", "show", ident, key=_text(KEY_A))
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout.split("\nrule ")[0])["subject"] == f"Quillfeather refund {TFN}"
    for wrong in (_text(KEY_B), None):
        refused = _cli(config, "held", "show", ident, key=wrong)
        assert refused.returncode == 1 and "Quillfeather" not in refused.stdout
        assert f"not configured: {KEY_A.id}" in refused.stderr
    bad = _cli(config, "held", "list", key="CHANGE-ME")
    assert bad.returncode == 1 and "DLP_GATEWAY_ENCRYPTION_KEY: not a 256-bit key" in bad.stderr
    status = _cli(config, "store", "status", key=_text(KEY_B))
    assert f"key {KEY_A.id} (NOT CONFIGURED: unreadable)" in status.stdout


def test_cli_genkey_and_rekey_rotate_the_store(store_url: str, tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump({"store_url": store_url, "encryption": {"old_keys": [_text(KEY_A)]}}))
    store = Store(store_url, Keyring(KEY_A))
    store.migrate()
    ident = _keep(store)
    store.close()
    made = _cli(config, "store", "genkey", key=None)
    new = Key.parse(made.stdout.strip(), "genkey")
    assert f"key id {new.id}" in made.stderr
    assert _cli(config, "store", "rekey", key=None).returncode == 1  # no current key: refuses
    rekeyed = _cli(config, "store", "rekey", key=made.stdout.strip())
    assert rekeyed.returncode == 0 and f"1 row(s) re-encrypted under key {new.id}" in rekeyed.stdout
    config.write_text(yaml.safe_dump({"store_url": store_url}))  # the old key retired
    shown = _cli(config, "held", "show", ident, key=made.stdout.strip())
    assert shown.returncode == 0 and "Quillfeather" in shown.stdout


def test_gateway_without_a_key_warns_at_start(
    sink: Sink, make_gateway: Callable[..., GatewayProcess]
) -> None:
    gateway = make_gateway(sink.port)
    deadline = time.monotonic() + 10
    while "encryption at rest is off" not in gateway.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "encryption at rest is off: held mail is stored unencrypted" in gateway.log()


def test_gateway_holds_encrypted_and_releases_the_original(sink: Sink, tmp_path: Path) -> None:
    config, port = write_settings(tmp_path, sink.port, encryption={"key": _text(KEY_A)})
    gateway = GatewayProcess(config, port, tmp_path).start()
    try:
        raw = message("Quillfeather refund", BODY)
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
            client.sendmail("alice@agency.gov.au", ["bob@example.com"], raw)
        listed = gateway.cli("held", "list", "--json")
        ident = json.loads(listed.stdout.splitlines()[0])["id"]
        stolen = b"".join(p.read_bytes() for p in (tmp_path / "var").glob("store.sqlite3*"))
        assert [s for s in SECRETS + OTHER_FORMS if s in stolen] == []
        assert "encryption at rest is off" not in gateway.log()
        released = gateway.cli("held", "release", ident)
        assert released.returncode == 0, released.stderr
        assert sink.messages[0].data.endswith(raw)
    finally:
        gateway.stop()
