"""E-mail addresses, validated against the public-suffix list shipped with tldextract.

Presidio's own EmailRecognizer calls ``tldextract.extract``, whose default
extractor fetches the suffix list over the network on first use; the gateway
must never make such a request, so we use the snapshot bundled in the package.
"""

from __future__ import annotations

import tldextract
from presidio_analyzer.predefined_recognizers import EmailRecognizer

_OFFLINE = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


class OfflineEmailRecognizer(EmailRecognizer):
    """EmailRecognizer with an offline top-level-domain check."""

    def validate_result(self, pattern_text: str) -> bool:
        return bool(_OFFLINE(pattern_text).fqdn)
