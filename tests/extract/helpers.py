"""Helpers for extraction tests: run the extractor, and query its output."""

from __future__ import annotations

from gateway.extract import ExtractLimits, Extractor
from gateway.model import Extraction

TFN = "123 456 782"  # synthetic TFN with a valid checksum
TFN_DIGITS = TFN.replace(" ", "")


def run(
    data: bytes,
    filename: str,
    *,
    declared_type: str = "application/octet-stream",
    charset: str | None = None,
    location: str = "attachment[1]:",
    isolation: str = "inline",
    **limits: object,
) -> Extraction:
    """Extract one attachment with default limits overridden by ``limits``."""
    extractor = Extractor(ExtractLimits(**limits), isolation=isolation)  # type: ignore[arg-type]
    return extractor.extract(
        data,
        filename=filename,
        declared_type=declared_type,
        charset=charset,
        location=location + filename,
    )


def text_at(result: Extraction, location: str) -> str:
    """All text extracted at exactly ``location``."""
    return "\n".join(s.text for s in result.segments if s.location == location)


def all_text(result: Extraction) -> str:
    return "\n".join(s.text for s in result.segments)


def locations_with(result: Extraction, needle: str) -> set[str]:
    """Locations whose text contains ``needle`` (spaces ignored, so '123 456 782' matches '123456782')."""
    squeezed = needle.replace(" ", "")
    return {s.location for s in result.segments if squeezed in s.text.replace(" ", "")}


def reasons(result: Extraction, entity_type: str) -> list[str]:
    return [f.attributes.get("reason", "") for f in result.findings if f.entity_type == entity_type]


def findings_at(result: Extraction, entity_type: str, location: str) -> list[str]:
    return [
        f.attributes.get("reason", "")
        for f in result.findings
        if f.entity_type == entity_type and f.location == location
    ]


def self_signed() -> tuple[object, object]:
    """A throwaway RSA key and self-signed certificate (for S/MIME tests)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dlp test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert
