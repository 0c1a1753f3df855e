"""Encryption at rest of what the store keeps of a message: its bytes, subject, findings,
rule hits, notices and reviewers' notes.

AES-256-GCM with a random 96-bit nonce per write.  Every stored value carries a
small header (format version and the id of the key that sealed it), and the
associated data binds it to its place (table, column and row id), so a value
copied into another row or column fails authentication instead of being shown.

Key ids are derived from the keys themselves (a domain-separated SHA-256), so an
operator cannot label two different keys alike, and a store opened with the wrong
key says which key it needs rather than trying the wrong one.

Without a key, values are stored as they are (as before this module existed).
With one, reads still accept such plaintext values (``read_plaintext``) so a
store can be switched on in place and re-encrypted by ``dlp-gateway store rekey``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.store.errors import BadKey, CryptoError

VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
KEY_ID_BYTES = 4
# Binary form (LargeBinary columns): MAGIC, version, key id, nonce, ciphertext and tag.
MAGIC = b"DLPE"
BINARY_HEADER = len(MAGIC) + 1 + KEY_ID_BYTES
# Text form (Text columns): "dlpe1:<key id hex>:<base64url of nonce, ciphertext and tag>".
# The key id stays readable so the database can count rows per key without decrypting.
TEXT_PREFIX = f"dlpe{VERSION}:"
TEXT_HEADER = len(TEXT_PREFIX) + 2 * KEY_ID_BYTES + 1


@dataclass(frozen=True)
class Slot:
    """Where a value lives: bound into its ciphertext so it cannot be moved elsewhere."""

    table: str
    column: str
    row: str

    def associated_data(self, header: bytes) -> bytes:
        # The header is authenticated too; the NUL separators keep the fields unambiguous.
        fields = [b"dlp-gateway", header, self.table.encode(), self.column.encode(), self.row.encode()]
        return b"\0".join(fields)

    def __str__(self) -> str:
        return f"{self.table}.{self.column} of {self.row}"


@dataclass(frozen=True)
class Key:
    """A 256-bit key and its id (hex of the first bytes of a hash of it)."""

    id: str
    secret: bytes

    @classmethod
    def from_secret(cls, secret: bytes) -> Key:
        if len(secret) != KEY_BYTES:
            raise BadKey(f"a key must be {KEY_BYTES} bytes, not {len(secret)}")
        digest = hashlib.sha256(b"dlp-gateway key id\0" + secret).digest()
        return cls(digest[:KEY_ID_BYTES].hex(), secret)

    @classmethod
    def parse(cls, text: str, source: str) -> Key:
        """A key written as base64 (standard or URL-safe) or 64 hex digits.

        ``source`` names where it came from for the error; the value itself is never shown.
        """
        return cls.from_secret(_decode_key(text.strip(), source))

    def __repr__(self) -> str:  # never print the secret (logs, tracebacks)
        return f"Key(id={self.id!r})"


def new_key_text() -> str:
    """A fresh random key as base64, the form the settings and the environment take."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def _decode_key(text: str, source: str) -> bytes:
    wrong = BadKey(
        f"{source}: not a 256-bit key (32 bytes as base64, or 64 hex digits); "
        "make one with `dlp-gateway store genkey`"
    )
    if len(text) == 2 * KEY_BYTES:
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise wrong from None
    try:
        padded = text + "=" * (-len(text) % 4)
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise wrong from None
    if len(raw) != KEY_BYTES:
        raise wrong
    return raw


class Keyring:
    """The current key (seals new values) and older keys (still open what they sealed)."""

    def __init__(self, current: Key | None = None, old: Iterable[Key] = (), read_plaintext: bool = True):
        self.current = current
        self.read_plaintext = read_plaintext
        self._keys: dict[str, Key] = {}
        for key in [*([current] if current else []), *old]:
            known = self._keys.get(key.id)
            if known is not None and known.secret != key.secret:
                raise BadKey(f"two different keys share the id {key.id}; make a new key")
            self._keys[key.id] = key
        self._aead = {kid: AESGCM(key.secret) for kid, key in self._keys.items()}

    @property
    def enabled(self) -> bool:
        """Whether new values are encrypted."""
        return self.current is not None

    @property
    def ids(self) -> list[str]:
        """Every configured key id, the current one first."""
        return list(self._keys)

    # -- bytes (LargeBinary columns) ----------------------------------------

    def seal(self, data: bytes, slot: Slot) -> bytes:
        """``data`` encrypted for ``slot`` under the current key (as it is, without a key)."""
        if self.current is None:
            return data
        header = MAGIC + bytes([VERSION]) + bytes.fromhex(self.current.id)
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead[self.current.id].encrypt(nonce, data, slot.associated_data(header))
        return header + nonce + sealed

    def open(self, stored: bytes, slot: Slot) -> bytes:
        """The plaintext of a value read from ``slot``; CryptoError rather than anything unverified."""
        if not stored.startswith(MAGIC):
            return self._plaintext(stored, slot)
        header = stored[:BINARY_HEADER]
        if len(stored) < BINARY_HEADER + NONCE_BYTES + 16 or header[len(MAGIC)] != VERSION:
            raise CryptoError(f"{slot}: not a value this version can read (damaged or newer)")
        kid = header[len(MAGIC) + 1 :].hex()
        body = stored[BINARY_HEADER:]
        return self._decrypt(kid, body, header, slot)

    # -- text (Text columns) ------------------------------------------------

    def seal_text(self, text: str, slot: Slot) -> str:
        """``text`` encrypted for ``slot``, as ASCII text (as it is, without a key)."""
        if self.current is None:
            return text
        header = (TEXT_PREFIX + self.current.id + ":").encode("ascii")
        nonce = os.urandom(NONCE_BYTES)
        aead = self._aead[self.current.id]
        sealed = aead.encrypt(nonce, text.encode("utf-8"), slot.associated_data(header))
        return header.decode("ascii") + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open_text(self, stored: str, slot: Slot) -> str:
        """The plaintext of a text value read from ``slot``."""
        if not stored.startswith(TEXT_PREFIX):
            return self._plaintext(stored.encode("utf-8"), slot).decode("utf-8")
        header = stored[:TEXT_HEADER]
        kid = header[len(TEXT_PREFIX) : -1]
        try:
            body = base64.urlsafe_b64decode(stored[TEXT_HEADER:].encode("ascii"))
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise CryptoError(f"{slot}: damaged (not base64)") from None
        if header[-1:] != ":" or len(kid) != 2 * KEY_ID_BYTES:
            raise CryptoError(f"{slot}: damaged header")
        plain = self._decrypt(kid, body, header.encode("ascii"), slot)
        try:
            return plain.decode("utf-8")
        except UnicodeDecodeError:
            raise CryptoError(f"{slot}: not text") from None

    # -- what a stored value needs ------------------------------------------

    def key_id_of(self, stored: bytes | str | None) -> str | None:
        """The id of the key a stored value was sealed with (None: plaintext or empty)."""
        if isinstance(stored, str):
            return stored[len(TEXT_PREFIX) : TEXT_HEADER - 1] if stored.startswith(TEXT_PREFIX) else None
        if stored is not None and stored.startswith(MAGIC) and len(stored) >= BINARY_HEADER:
            return bytes(stored[len(MAGIC) + 1 : BINARY_HEADER]).hex()
        return None

    def is_current(self, stored: bytes | str | None) -> bool:
        """Whether a stored value is as this keyring would write it now (rekey skips it)."""
        if stored is None:
            return True
        kid = self.key_id_of(stored)
        return kid == (self.current.id if self.current else None)

    def _plaintext(self, stored: bytes, slot: Slot) -> bytes:
        if not self.read_plaintext and self.current is not None:
            # Once a store is fully encrypted, a plaintext value can only have been put there.
            raise CryptoError(f"{slot}: stored unencrypted, and encryption.read_plaintext is off")
        return stored

    def _decrypt(self, kid: str, body: bytes, header: bytes, slot: Slot) -> bytes:
        aead = self._aead.get(kid)
        if aead is None:
            configured = ", ".join(self.ids) or "none"
            raise CryptoError(
                f"{slot}: encrypted under key {kid}, which is not configured (configured: {configured}); "
                "set DLP_GATEWAY_ENCRYPTION_KEY to it or add it to encryption.old_keys"
            )
        try:
            return aead.decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], slot.associated_data(header))
        except InvalidTag:
            raise CryptoError(
                f"{slot}: failed authentication under key {kid}: altered, or moved from another row"
            ) from None


PLAINTEXT = Keyring()
