"""Cryptographic envelopes: S/MIME (PKCS#7/CMS) and OpenPGP.

Enveloped (encrypted) content cannot be inspected and is ``ENCRYPTED``.
Opaque-signed S/MIME (signed-data with the content inside) is unwrapped and the
content extracted like any other part; a detached signature holds nothing to read.
"""

from __future__ import annotations

import base64
import re

from asn1crypto import cms

from gateway.extract.context import Context, EncryptedContent, Part
from gateway.extract.text import PGP_ARMOUR

_ENCRYPTED_TYPES = {"enveloped_data", "encrypted_data", "authenticated_enveloped_data"}
_PEM = re.compile(rb"-----BEGIN (?:PKCS7|CMS)-----(.*?)-----END (?:PKCS7|CMS)-----", re.DOTALL)
# OpenPGP packet tags that start an encrypted message: PKESK (1), SKESK (3), SED (9), SEIPD (18).
_PGP_ENCRYPTED_TAGS = {1, 3, 9, 18}


def extract_pkcs7(part: Part, ctx: Context) -> None:
    """Unwrap signed-data; report enveloped data as encrypted."""
    der = part.data
    pem = _PEM.search(der[:1_000_000])
    if pem:
        der = base64.b64decode(pem.group(1), validate=False)
    info = cms.ContentInfo.load(der)
    content_type = info["content_type"].native
    if content_type in _ENCRYPTED_TYPES:
        raise EncryptedContent(f"smime:{content_type.replace('_', '-')}")
    if content_type != "signed_data":
        ctx.finding_unscannable(part.location, f"unsupported pkcs7 content {content_type}")
        return
    inner = info["content"]["encap_content_info"]["content"].native
    if isinstance(inner, bytes) and inner:
        ctx.recurse(inner, f"{part.location}/content", filename="")


def extract_pgp(part: Part, ctx: Context) -> None:
    """OpenPGP: an encrypted message (armoured or binary) is reported; a signed one is not encrypted."""
    head = part.data[:4096]
    if PGP_ARMOUR.encode() in head or part.declared_type.lower() == "application/pgp-encrypted":
        raise EncryptedContent("pgp:message")
    if head and head[0] & 0x80:
        first = head[0]
        tag = first & 0x3F if first & 0x40 else (first >> 2) & 0x0F
        if tag in _PGP_ENCRYPTED_TAGS:
            raise EncryptedContent("pgp:message")
    ctx.finding_unscannable(part.location, "unsupported pgp data")
