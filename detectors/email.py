"""E-mail addresses, validated against the public-suffix list shipped with tldextract.

Presidio's own EmailRecognizer calls ``tldextract.extract``, whose default
extractor fetches the suffix list over the network on first use; the gateway
must never make such a request, so we use the snapshot bundled in the package.
"""

from __future__ import annotations

import tldextract
from presidio_analyzer.predefined_recognizers import EmailRecognizer

from detectors.context import ContextScored
from detectors.prefilter import Trigger, Windowed

_OFFLINE = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
# The local part before @ is unbounded in Presidio's regex; 300 characters in practice.
_LOCAL_PART = 300


class OfflineEmailRecognizer(ContextScored, EmailRecognizer):
    """EmailRecognizer with an offline top-level-domain check, context scored from the text."""

    def validate_result(self, pattern_text: str) -> bool:
        return bool(_OFFLINE(pattern_text).fqdn)

    def prefilter_spec(self) -> Windowed:
        """Every address has an @; the window holds its local part."""
        return Windowed((Trigger("@", 1, _LOCAL_PART, _LOCAL_PART),))
