"""Masked excerpts: enough for a person to recognise a value, never the value itself."""

from __future__ import annotations

MASK = "•"


def mask(value: str, entity_type: str = "") -> str:
    """Mask letters and digits, keeping separators and at most the last 3 characters.

    ``123 456 782`` → ``••• ••• 782``.  Short values (under 6 letters/digits) keep
    nothing; e-mail addresses keep their domain, since the domain is not the secret.
    """
    if entity_type == "EMAIL_ADDRESS" and "@" in value:
        local, _, domain = value.rpartition("@")
        return f"{_mask_all(local)}@{domain}"
    alnum = sum(ch.isalnum() for ch in value)
    keep = 3 if alnum >= 6 else 0
    if entity_type in ("SECRET",) or alnum > 40:
        keep = min(keep, 2)
    out: list[str] = []
    for ch in reversed(value):
        if ch.isalnum():
            if keep > 0:
                out.append(ch)
                keep -= 1
            else:
                out.append(MASK)
        else:
            out.append(ch)
    return "".join(reversed(out))[:80]


def _mask_all(text: str) -> str:
    return "".join(MASK if ch.isalnum() else ch for ch in text)
