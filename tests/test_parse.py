"""MIME parsing: readable text, locations, and no crash on anything other parsers' suites hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.parse import parse_message
from tests.support import shared_dir

NESTED = (
    b"From: a@agency.gov.au\r\nTo: b@example.com\r\nSubject: outer\r\n"
    b"X-Protective-Marking: VER=2018.1, NS=gov.au, SEC=OFFICIAL:Sensitive\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
    b"--XX\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n"
    b"--YY\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"Caf=E9 plain\r\n--YY\r\nContent-Type: text/html\r\n\r\n<p>html <b>body</b></p><script>x()</script>\r\n"
    b"--YY--\r\n--XX\r\nContent-Type: message/rfc822\r\n\r\n"
    b"Subject: inner\r\nContent-Type: text/plain\r\n\r\ninner body\r\n"
    b"--XX\r\nContent-Type: text/csv; name=clients.csv\r\n"
    b"Content-Disposition: attachment; filename=clients.csv\r\n\r\n"
    b"id,tfn\r\n1,123 456 782\r\n--XX--\r\n"
)


def test_segments_and_locations() -> None:
    parsed = parse_message(NESTED)
    by_location = {s.location: s.text for s in parsed.segments}
    assert by_location["subject"] == "outer"
    assert "SEC=OFFICIAL:Sensitive" in by_location["header:X-Protective-Marking"]
    assert by_location["body"].startswith("Café plain")
    assert "html" in by_location["body:html"] and "x()" not in by_location["body:html"]
    assert by_location["attachment[1]:message.eml/subject"] == "inner"
    assert by_location["attachment[1]:message.eml/body"].startswith("inner body")
    [csv] = parsed.parts
    assert (csv.location, csv.declared_type, csv.data) == (
        "attachment[2]:clients.csv",
        "text/csv",
        b"id,tfn\r\n1,123 456 782",
    )


def test_broken_base64_and_charset_are_read_as_far_as_possible() -> None:
    raw = (
        b"Subject: =?x-unknown?q?bad?=\r\nContent-Type: text/plain; charset=no-such-charset\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nVEZOIDEyMyA0NTYgNzgy!!!\r\n"
    )
    parsed = parse_message(raw)
    assert "TFN 123 456 782" in parsed.segments[-1].text
    assert parsed.defects  # the bad base64 is recorded, not fatal


def test_deep_nesting_stops_at_the_limit() -> None:
    inner = b"Subject: bottom\r\n\r\nbottom text\r\n"
    for _ in range(40):
        inner = b"Content-Type: message/rfc822\r\n\r\n" + inner
    parsed = parse_message(b"Subject: top\r\n" + inner)
    assert parsed.too_deep


def _corpus_messages() -> list[Path]:
    root = shared_dir("corpora", "mime_robustness")
    skip = {".json", ".xml", ".md", ".tsv", ".out", ".bin", ".py", ".js"}
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() not in skip and "_decoded_" not in p.name
    )


def test_every_corpus_message_parses_without_exception() -> None:
    files = _corpus_messages()
    assert len(files) > 500
    for path in files:
        parsed = parse_message(path.read_bytes())
        assert isinstance(parsed.defects, list), path


@pytest.mark.parametrize(
    "name",
    [
        "mimekit/messages/stack-overflow.txt",
        "nodemailer_mailparser/test/fixtures/outofmemory.eml",
        "nodemailer_mailparser/test/fixtures/htmllargecallstack.eml",
        "rspamd/gargantua.eml",
    ],
)
def test_hostile_messages_scan_to_a_result(name: str) -> None:
    from detectors.config import DetectorConfig
    from gateway.scan import Scanner

    path = shared_dir("corpora", "mime_robustness", *name.split("/"))
    result = Scanner.build(DetectorConfig()).scan(path.read_bytes())
    assert result.size == path.stat().st_size
