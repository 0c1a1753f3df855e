"""Recipient domains: shipped lists (personal webmail, posting gateways) and lookalikes.

A lookalike is a domain a sender could mistake for one of the agency's own or a
partner's: a typo (``integrity-tas.gov.au``, ``lntegrity.tas.gov.au``) or a
homoglyph (``іntegrity.tas.gov.au`` with a Cyrillic ``і``, sent as punycode), or
the real name used as a prefix (``integrity.tas.gov.au.example.com``).
The agency's own domains and their subdomains are never lookalikes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import idna
from confusable_homoglyphs import confusables
from rapidfuzz.distance import Levenshtein

DATA_DIR = Path(__file__).resolve().parent / "data"
WEBMAIL_FILE = DATA_DIR / "webmail_domains.txt"
POSTING_FILE = DATA_DIR / "posting_gateways.txt"

# Within-ASCII lookalikes that Unicode confusables do not cover (they are one script).
ASCII_FOLDS = (("rn", "m"), ("vv", "w"), ("0", "o"), ("1", "l"), ("i", "l"), ("5", "s"))


class DomainListError(ValueError):
    """A domain list file that cannot be read."""


def domain_of(address: str) -> str:
    """The lower-cased domain of an address, punycode decoded where valid."""
    domain = address.rpartition("@")[2].strip().strip(">").lower().rstrip(".")
    return to_unicode(domain)


def to_unicode(domain: str) -> str:
    """``xn--`` labels decoded, so homoglyphs can be compared; invalid ones left as they are."""
    if "xn--" not in domain:
        return domain
    try:
        return str(idna.decode(domain))
    except (idna.IDNAError, UnicodeError):
        return domain


def within(domain: str, parents: Iterable[str]) -> bool:
    """``domain`` is one of ``parents`` or a subdomain of one."""
    return any(domain == p or domain.endswith("." + p) for p in parents)


def load_domain_list(path: Path) -> frozenset[str]:
    """One domain per line; ``#`` comments and blank lines ignored."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DomainListError(f"{path}: cannot read: {exc.strerror}") from None
    domains = (line.split("#", 1)[0].strip().lower().rstrip(".") for line in lines)
    return frozenset(d for d in domains if d)


@dataclass(frozen=True)
class DomainLists:
    """The shipped (or configured) lists of webmail and posting-gateway domains."""

    webmail: frozenset[str] = frozenset()
    posting: frozenset[str] = frozenset()

    @classmethod
    def load(cls, webmail: Path | None = None, posting: Path | None = None) -> DomainLists:
        """Read the lists; ``None`` means the copy shipped in ``gateway/data``."""
        return cls(load_domain_list(webmail or WEBMAIL_FILE), load_domain_list(posting or POSTING_FILE))

    def is_webmail(self, domain: str) -> bool:
        return within(domain, self.webmail)

    def is_posting(self, domain: str) -> bool:
        return within(domain, self.posting)


def skeleton(text: str) -> str:
    """A form in which confusable spellings coincide (TR39-style, Latin preferred)."""
    chars = []
    for char in text:
        if char.isascii():
            chars.append(char)
            continue
        found = confusables.is_confusable(char, preferred_aliases=["latin"], greedy=True) or []
        latin = [h["c"] for f in found for h in f["homoglyphs"] if h["c"].isascii()]
        chars.append(latin[0].lower() if latin else char)
    folded = "".join(chars).lower()
    for source, target in ASCII_FOLDS:
        folded = folded.replace(source, target)
    return folded


def allowed_distance(name: str) -> int:
    """Edit distance tolerated for a protected name: short names would match everything."""
    if len(name) <= 4:
        return 0
    if len(name) <= 8:
        return 1
    return 2


@dataclass(frozen=True)
class LookalikeChecker:
    """Compares recipient domains with the protected (internal and partner) domains."""

    protected: tuple[str, ...]
    internal: tuple[str, ...] = ()
    max_distance: int = 2
    _skeletons: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def lookalike_of(self, domain: str) -> str | None:
        """The protected domain that ``domain`` imitates, or None."""
        domain = to_unicode(domain.lower().rstrip("."))
        if not domain or within(domain, self.internal) or within(domain, self.protected):
            return None
        labels = domain.split(".")
        for target in self.protected:
            if domain.startswith(target + "."):
                return target  # agency.gov.au.example.com: the real name used as a prefix
            # Compare with as many trailing labels as the target has, so that
            # mail.lntegrity.tas.gov.au is caught as well as lntegrity.tas.gov.au.
            count = target.count(".") + 1
            for candidate in {".".join(labels[-count:]), ".".join(labels[-count - 1 :]), domain}:
                if self._imitates(candidate, target):
                    return target
        return None

    def _imitates(self, candidate: str, target: str) -> bool:
        if candidate == target:
            return False
        if skeleton(candidate) == self._skeleton(target):
            return True
        limit = min(self.max_distance, allowed_distance(target.split(".")[0]))
        return limit > 0 and Levenshtein.distance(candidate, target, score_cutoff=limit) <= limit

    def _skeleton(self, target: str) -> str:
        if target not in self._skeletons:
            self._skeletons[target] = skeleton(target)
        return self._skeletons[target]
