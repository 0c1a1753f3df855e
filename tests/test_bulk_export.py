"""A CSV export of client records is caught even though most cells stand far from any
context word: identifiers in CSV cells are candidates, and the default policy holds
a column of checksum-valid numbers going outside."""

from __future__ import annotations

import random

from detectors.checksums import tfn_valid
from detectors.config import DetectorConfig
from detectors.registry import all_entities
from gateway.app import PACKAGE_ROOT
from gateway.model import Action, Envelope
from gateway.policy import decide, load_policy
from gateway.scan import Scanner


def _valid_tfns(count: int) -> list[str]:
    rng = random.Random(7)
    values: list[str] = []
    while len(values) < count:
        candidate = str(rng.randrange(10**8, 10**9))
        if tfn_valid(candidate):
            values.append(candidate)
    return values


def _export(rows: list[str]) -> bytes:
    body = "\r\n".join(["id,name,reference", *rows])
    return (
        "From: alice@agency.gov.au\r\nTo: bob@example.com\r\nSubject: export\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=B\r\n\r\n"
        "--B\r\nContent-Type: text/plain\r\n\r\nAttached.\r\n"
        "--B\r\nContent-Type: text/csv; name=clients.csv\r\n"
        "Content-Disposition: attachment; filename=clients.csv\r\n\r\n"
        f"{body}\r\n--B--\r\n"
    ).encode()


def test_csv_column_of_tax_file_numbers_is_held_for_external_recipients() -> None:
    scanner = Scanner.build(DetectorConfig())
    rows = [f"{i},Client {i},{tfn}" for i, tfn in enumerate(_valid_tfns(40))]
    scan = scanner.scan(_export(rows))
    tfns = [f for f in scan.findings if f.entity_type == "AU_TFN"]
    assert len(tfns) == 40
    assert all(f.location == "attachment[1]:clients.csv" for f in tfns)
    policy = load_policy(PACKAGE_ROOT / "policies" / "default.yaml", all_entities())
    envelope = Envelope("alice@agency.gov.au", ("bob@example.com", "carol@agency.gov.au"))
    decision = decide(policy, scan, envelope, ("agency.gov.au",))
    assert decision.per_recipient == {"bob@example.com": Action.HOLD, "carol@agency.gov.au": Action.PASS}
    assert "bulk-checksum-valid-numbers-external" in decision.rule_names


def test_thousands_formatted_amounts_are_not_identifiers() -> None:
    scanner = Scanner.build(DetectorConfig())
    scan = scanner.scan(_export([f'{i},Invoice,"{i}23,456,782.00"' for i in range(1, 30)]))
    assert [f for f in scan.findings if f.entity_type == "AU_TFN"] == []
