"""The store's exceptions, in a module of their own so ``crypto`` can share them."""

from __future__ import annotations


class StoreError(Exception):
    """The store could not do what was asked (unreachable, or a conflicting change)."""


class CryptoError(StoreError):
    """A stored value cannot be read: its key is not configured, or it was altered or moved.

    A StoreError, so every caller that already copes with an unavailable store (4xx
    to the client, the outbox retrying later) copes with this too: nothing is
    delivered or shown that did not decrypt and authenticate.
    """


class BadKey(CryptoError):
    """A configured key that cannot be used (wrong length or encoding, clashing id)."""
