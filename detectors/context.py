"""Context words just before a result raise its score: Presidio's rule, read straight from the text.

Presidio's ``LemmaContextAwareEnhancer`` tokenises the text with spaCy and
walks the tokens to find each result's one; on number-heavy text that walk
cost about 2 ms per result and dominated detection.  The recognisers that
take their context from Presidio (phone, e-mail, IP, IBAN) read it here
instead, inside their own ``analyze``, so the plain path and the windowed
fast path score alike and Presidio's enhancer never runs on them
(their ``context`` is empty).

The rule is Presidio's: if one of the recogniser's context words is a
substring of one of the five words (stop words left out) before a result,
the score rises by 0.35, to at least 0.4 and at most 1.0.  Words are read
from at most ``CONTEXT_CHARS`` characters before the result.  The fast path
matches in narrow windows (:meth:`ContextScored.match`) and scores each
result against the whole text, so both paths give the same scores.
"""

from __future__ import annotations

import re
from typing import Any

from presidio_analyzer import RecognizerResult
from spacy.lang.en.stop_words import STOP_WORDS

CONTEXT_CHARS = 120
WORDS_BEFORE = 5
BOOST = 0.35
FLOOR = 0.4
_WORD = re.compile(r"\w+")


def words_before(text: str, start: int) -> list[str]:
    """The last ``WORDS_BEFORE`` lower-case words before ``start`` that are not stop words."""
    words = _WORD.findall(text[max(0, start - CONTEXT_CHARS) : start].lower())
    return [w for w in words if w not in STOP_WORDS][-WORDS_BEFORE:]


def supporting_word(text: str, start: int, context: tuple[str, ...]) -> str | None:
    """The first context word found within a word before ``start``, if any."""
    before = words_before(text, start)
    return next((c for c in context if any(c in w for w in before)), None)


def boost(text: str, results: list[RecognizerResult], context: tuple[str, ...]) -> list[RecognizerResult]:
    """Raise the score of each result with a context word before it (in place; returns ``results``)."""
    for result in results:
        word = supporting_word(text, result.start, context)
        if word is None:
            continue
        result.score = min(1.0, max(FLOOR, result.score + BOOST))
        meta = result.recognition_metadata if result.recognition_metadata is not None else {}
        meta[RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY] = True
        result.recognition_metadata = meta
        if result.analysis_explanation is not None:
            result.analysis_explanation.set_supportive_context_word(word)
            result.analysis_explanation.set_improved_score(result.score)
    return results


class ContextScored:
    """Mixin for a Presidio recogniser: score context itself, keep Presidio's enhancer away.

    Put it first in the bases: ``class X(ContextScored, SomePresidioRecognizer)``.
    """

    context: list[str]
    context_words: tuple[str, ...]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.context_words = tuple(word.lower() for word in self.context)
        self.context = []  # Presidio's enhancer skips recognisers without context words

    def analyze(self, text: str, entities: list[str], *args: Any, **kwargs: Any) -> list[RecognizerResult]:
        """The base recogniser's results, context-scored from ``text``."""
        return boost(text, self.match(text, entities, *args, **kwargs), self.context_words)

    def match(self, text: str, entities: list[str], *args: Any, **kwargs: Any) -> list[RecognizerResult]:
        """The base recogniser's results before context scoring (the fast path scores them later)."""
        return list(super().analyze(text, entities, *args, **kwargs) or [])  # type: ignore[misc]
