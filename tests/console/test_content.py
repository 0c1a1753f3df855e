"""The message view's content: detected values masked at their offsets and wherever
else they recur; revealed only on request; hidden entirely if the rescan fails."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from gateway.console.content import ContentView, Rescanner, build_view, content_view, mask_with_excerpts
from gateway.model import Finding, ScanResult
from gateway.scan import Scanner
from gateway.settings import Settings

TFN = "123 456 782"
CARD = "4111 1111 1111 1111"

HTML_MAIL = (
    b"From: alice@agency.gov.au\r\nTo: bob@example.com\r\nSubject: refund for TFN 123 456 782\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"
    b"--b\r\nContent-Type: text/plain\r\n\r\nTFN 123 456 782 and card 4111 1111 1111 1111.\r\n"
    b"--b\r\nContent-Type: text/html\r\n\r\n<p>TFN <b>123 456 782</b></p><script>alert(1)</script>"
    b'<img src="http://203.0.113.9/t.png">\r\n--b--\r\n'
)


def _text(view: ContentView) -> str:
    pieces = [
        s.text for group in (view.headers, view.parts, view.html_sources) for t in group for s in t.spans
    ]
    return "".join(pieces)


def test_values_are_masked_in_every_part_header_and_html_source(scanner: Scanner) -> None:
    result = scanner.scan(HTML_MAIL)
    view = build_view(HTML_MAIL, result, result.findings, reveal=False)
    text = _text(view)
    assert TFN not in text and CARD not in text
    assert "••• ••• 782" in text and "•••• •••• •••• •111" in text
    assert "<script>alert(1)</script>" in text  # the source is there, as text
    locations = [p.location for p in view.parts]
    assert locations == ["body", "body:html"]
    subject = next(h for h in view.headers if h.location == "Subject")
    assert any(s.entity == "AU_TFN" and s.masked for s in subject.spans)


def test_reveal_shows_the_values_marked(scanner: Scanner) -> None:
    result = scanner.scan(HTML_MAIL)
    view = build_view(HTML_MAIL, result, result.findings, reveal=True)
    body = view.parts[0]
    assert [s.text for s in body.spans if s.entity] == [TFN, CARD]
    assert not any(s.masked for s in body.spans)


@dataclass
class BrokenScanner:
    async def scan(self, raw: bytes) -> ScanResult:
        raise RuntimeError("worker died")


def test_a_failed_rescan_hides_the_text() -> None:
    view = asyncio.run(content_view(Rescanner(Settings(), BrokenScanner()), HTML_MAIL, [], reveal=False))
    assert not view.available and view.parts == [] and view.headers == []
    assert "hidden" in view.problem


def test_subjects_are_masked_from_stored_excerpts() -> None:
    findings = [
        Finding("AU_TFN", 0.95, "subject", "••• ••• 782"),
        Finding("AU_TFN", 0.95, "body", "••• ••• 999"),
    ]
    assert mask_with_excerpts(f"refund for {TFN} today", findings) == "refund for ••• ••• 782 today"
    assert mask_with_excerpts("nothing to hide", findings) == "nothing to hide"
