"""One pass over a text finds the few places where any recogniser could match.

Running every Presidio recogniser over every character of every message costs
2–6 ms per KB.  Nearly all of that text holds nothing: what matters is found
next to a handful of *triggers* — digit runs shaped like identifiers, ``@``,
marking keywords, secret prefixes, phrase anchor words.  So:

1. the text is mapped to bytes, one byte per character (:func:`scan_bytes`),
   so byte offsets are character offsets;
2. one Hyperscan database holding every recogniser's triggers scans those
   bytes once (Python ``re`` per trigger when the ``hyperscan`` wheel is
   missing: same results, slower);
3. each recogniser then runs only on merged windows around its triggers,
   wide enough for the context words, look-behinds and the full span of
   any match (see :class:`Windowed`); recognisers that need the whole
   document run on the whole text (:class:`WholeText`), and the phrase
   recognisers take anchor positions straight away (:class:`Anchored`).

Every trigger must be *necessary*: each result its recogniser can produce
contains a match of one of its triggers (or, for context-required
recognisers, lies near one).  Then the windowed run finds what the full run
finds; ``tests/detectors/test_fast_path.py`` checks exactly that.
"""

from __future__ import annotations

import codecs
import heapq
import importlib
import logging
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


def _load_hyperscan() -> Any:
    """Hyperscan is a binary wheel: the gateway still works (slower) without it."""
    try:
        return importlib.import_module("hyperscan")
    except ImportError:  # pragma: no cover - exercised by the forced-fallback test
        return None


hyperscan: Any = _load_hyperscan()

log = logging.getLogger(__name__)

# Stand-in byte for a character outside Latin-1 that is no digit, space or
# ASCII look-alike; triggers never ask for it except where "any odd
# character" is allowed (phone-number punctuation).
PLACEHOLDER = "\x1a"
# Characters Python's ``re`` (IGNORECASE) treats as ASCII letters that casefold() does not map.
_EQUIVALENT = {"ı": "i", "İ": "i", "ſ": "s", "K": "k"}
# Windows start and end this many characters away from anything a recogniser
# relies on, so results that touch a window edge are artefacts of the cut.
GUARD = 8
# How far a window may be widened to reach the start/end of its line.
LINE_SNAP = 4096
ANCHOR_LIMIT = 1_000_000


def _map_char(ch: str) -> str:
    """The one Latin-1 character that stands for ``ch`` in the scanned bytes.

    Digits map to their ASCII digit, spaces to a space, letters that match an
    ASCII letter case-insensitively to that letter and compatibility forms
    (full-width brackets, ``ｘ``) to their ASCII base, so every trigger that
    could match the real text also matches the mapped bytes.
    """
    digit = unicodedata.decimal(ch, None)
    if digit is not None:
        return str(digit)
    if ch.isspace():
        return " "
    if ch in _EQUIVALENT:
        return _EQUIVALENT[ch]
    folded = ch.casefold()
    if len(folded) == 1 and folded.isascii():
        return folded
    base = unicodedata.normalize("NFKD", ch)[:1]
    return base if base and base.isascii() else PLACEHOLDER


class _Table(dict[int, str]):
    """``str.translate`` table filled on first use of each character."""

    def __missing__(self, codepoint: int) -> str:
        if len(self) > 200_000:  # hostile text with every code point: bound memory
            self.clear()
        value = self[codepoint] = _map_char(chr(codepoint))
        return value


_TABLE = _Table()


def _replace(exc: UnicodeError) -> tuple[str, int]:
    assert isinstance(exc, UnicodeEncodeError)
    return exc.object[exc.start : exc.end].translate(_TABLE), exc.end


codecs.register_error("dlp-prefilter", _replace)


def scan_bytes(text: str) -> bytes:
    """``text`` as bytes, one per character (Latin-1, other characters mapped by :func:`_map_char`)."""
    return text.encode("latin-1", "dlp-prefilter")


# --- what recognisers declare -------------------------------------------------------------


@dataclass(frozen=True)
class Trigger:
    """A pattern every result of a recogniser contains (or lies near), and how far it reads.

    ``pattern`` is understood alike by Hyperscan and Python ``re`` over the
    scanned bytes.  Hyperscan reports match ends only, so ``width`` is the
    longest match; the window is ``[end - width - before, end + after)``.
    """

    pattern: str
    width: int
    before: int
    after: int
    caseless: bool = False
    prefilter_mode: bool = False  # Hyperscan HS_FLAG_PREFILTER: agency regexes it cannot run exactly
    key: str = ""  # for an Anchored recogniser's regex triggers: where its ends are reported


def literals(words: Iterable[str], before: int, after: int, caseless: bool = True) -> tuple[Trigger, ...]:
    """Triggers for literal words."""
    return tuple(Trigger(re.escape(w), len(w), before, after, caseless) for w in words)


@dataclass(frozen=True)
class Windowed:
    """Run the recogniser's ``analyze`` on merged windows around its triggers."""

    triggers: tuple[Trigger, ...]
    snap_lines: bool = False  # widen windows to whole lines (line-based recognisers)


@dataclass(frozen=True)
class Anchored:
    """The recogniser takes anchor-word positions itself (``analyze_anchored``).

    ``patterns`` are triggers for its regexes that have no anchor word; their
    match ends arrive under ``PATTERN_KEY + trigger.pattern`` (an empty list
    when none matched).  ``always``: some regex could not be made a trigger, so
    run the recogniser even when nothing matched.
    """

    anchors: tuple[str, ...]
    patterns: tuple[Trigger, ...] = ()
    always: bool = False


PATTERN_KEY = "re:"


@dataclass(frozen=True)
class WholeText:
    """The recogniser needs the whole text (document fingerprints, EDM) but no NLP artifacts."""


Spec = Windowed | Anchored | WholeText
SPEC_ATTRIBUTE = "prefilter_spec"


@runtime_checkable
class AnchoredRecognizer(Protocol):
    """What an :class:`Anchored` recogniser implements."""

    def analyze_anchored(
        self, text: str, positions: Any, entities: list[str], nlp_artifacts: Any
    ) -> list[Any]:
        """Results for ``text``, given where each anchor word starts in ``text.lower()``."""
        ...


def attach(recognizer: object, spec: Spec | None) -> None:
    """Record how the fast path may run ``recognizer`` (None: on the whole text, with NLP)."""
    setattr(recognizer, SPEC_ATTRIBUTE, spec)


def spec_of(recognizer: object) -> Spec | None:
    """The spec attached by :func:`attach`, if any."""
    spec = getattr(recognizer, SPEC_ATTRIBUTE, None)
    return spec if isinstance(spec, Windowed | Anchored | WholeText) else None


# --- the scanner ------------------------------------------------------------------------


@dataclass
class Hits:
    """Match ends per trigger id, in order, from one scan (triggers that did not match are absent)."""

    by_trigger: dict[int, list[int]]

    def ends(self, first: int, count: int) -> list[list[int]]:
        """Match ends of triggers ``first`` … ``first + count - 1``, in order."""
        return [self.by_trigger.get(i, []) for i in range(first, first + count)]


@dataclass
class _Compiled:
    """Triggers of all recognisers, flattened; Hyperscan database or Python patterns."""

    triggers: list[Trigger]
    database: Any = None
    hs_ids: list[int] = field(default_factory=list)
    fallback: list[tuple[int, re.Pattern[bytes]]] = field(default_factory=list)


class Prefilter:
    """Scans text once for every trigger of every recogniser."""

    def __init__(self, triggers: Sequence[Trigger], use_hyperscan: bool = True) -> None:
        self._compiled = _compile(list(triggers), use_hyperscan and hyperscan is not None)

    @property
    def backend(self) -> str:
        """``hyperscan`` when every trigger runs in the Hyperscan database, else ``re`` or ``mixed``."""
        if self._compiled.database is None:
            return "re"
        return "mixed" if self._compiled.fallback else "hyperscan"

    def scan(self, data: bytes) -> Hits:
        """Ends of every trigger match in ``data`` (see :func:`scan_bytes`)."""
        ends: dict[int, list[int]] = {}
        if self._compiled.database is not None and data:

            def on_match(trigger_id: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
                found = ends.get(trigger_id)
                if found is None:
                    ends[trigger_id] = [end]
                else:
                    found.append(end)

            self._compiled.database.scan(data, match_event_handler=on_match)
        for trigger_id, pattern in self._compiled.fallback:
            # Overlapping matches: each match start is tried (a lookahead), like Hyperscan.
            found = [m.end(1) for m in pattern.finditer(data)]
            if found:
                ends[trigger_id] = found
        for found in ends.values():
            found.sort()  # a pass over sorted data when Hyperscan reported them in order
        return Hits(ends)


# Escapes whose Unicode meaning Hyperscan's byte mode lacks, and their widening over
# scan_bytes: any non-ASCII byte may stand for a word character, and Latin-1's
# spaces (and the placeholder for other scripts' spaces, mapped to " ") for \s.
_WIDEN = {"\\w": "\\w\\x80-\\xff\\x1a", "\\s": "\\s\\x1c-\\x1f\\x85\\xa0"}
_ESCAPE = re.compile(r"\\.|\[|\]")


def trigger_source(source: str) -> str | None:
    """A regex as a Hyperscan prefilter-mode trigger over :func:`scan_bytes`, or None.

    ``\\b``/``\\B`` are dropped and ``\\w``/``\\s`` widened, so the trigger
    matches wherever the regex (with Python's Unicode classes) could; other
    Unicode-dependent escapes, non-ASCII text and patterns Hyperscan rejects
    give None (the caller then runs the regex over the whole text).
    """
    if not source.isascii() or re.search(r"\\[pPXNDu]", source):
        return None
    out: list[str] = []
    in_class = False
    pos = 0
    for match in _ESCAPE.finditer(source):
        out.append(source[pos : match.start()])
        token = match.group(0)
        pos = match.end()
        if token == "[" and not in_class:
            in_class = True
        elif token == "]" and in_class:
            in_class = False
        if token in ("\\b", "\\B") and not in_class:
            continue
        if token in _WIDEN:
            token = _WIDEN[token] if in_class else f"[{_WIDEN[token]}]"
        out.append(token)
    out.append(source[pos:])
    converted = "".join(out)
    return converted if accepts(converted) else None


def accepts(pattern: str) -> bool:
    """Whether Hyperscan compiles ``pattern`` in prefilter mode (False without Hyperscan)."""
    if hyperscan is None:
        return False
    try:
        _hs_database([Trigger(pattern, 0, 0, 0, True, prefilter_mode=True)], [0])
    except hyperscan.error:
        return False
    return True


def _flags(trigger: Trigger) -> int:
    flags = hyperscan.HS_FLAG_CASELESS if trigger.caseless else 0
    if trigger.prefilter_mode:
        flags |= hyperscan.HS_FLAG_PREFILTER | hyperscan.HS_FLAG_DOTALL | hyperscan.HS_FLAG_MULTILINE
    return flags


_LEADING_FLAGS = re.compile(r"^\(\?([aiLmsux]+)\)")


def _python_pattern(trigger: Trigger) -> re.Pattern[bytes]:
    flags = re.IGNORECASE if trigger.caseless else 0
    source = trigger.pattern
    if trigger.prefilter_mode:
        flags |= re.DOTALL | re.MULTILINE
    leading = _LEADING_FLAGS.match(source)
    if leading:  # inline flags must stay first: lift them out of the look-ahead
        flags |= re.MULTILINE if "m" in leading.group(1) else 0
        flags |= re.IGNORECASE if "i" in leading.group(1) else 0
        flags |= re.DOTALL if "s" in leading.group(1) else 0
        source = source[leading.end() :]
    return re.compile(b"(?=(" + source.encode("latin-1") + b"))", flags)


def _compile(triggers: list[Trigger], use_hyperscan: bool) -> _Compiled:
    compiled = _Compiled(triggers)
    accepted: list[int] = []
    if use_hyperscan and triggers:
        try:  # the usual case, in one compile (each compile costs start-up time in every worker)
            compiled.database = _hs_database(triggers, list(range(len(triggers))))
            accepted = list(range(len(triggers)))
        except hyperscan.error:
            accepted = _accepted_one_by_one(triggers)
            if accepted:
                compiled.database = _hs_database([triggers[i] for i in accepted], accepted)
        compiled.hs_ids = accepted
    compiled.fallback = [(i, _python_pattern(t)) for i, t in enumerate(triggers) if i not in set(accepted)]
    return compiled


def _accepted_one_by_one(triggers: list[Trigger]) -> list[int]:
    """Ids of the triggers Hyperscan compiles, each alone: one odd agency pattern must
    not disable the database for the rest."""
    accepted = []
    for i, trigger in enumerate(triggers):
        try:
            _hs_database([trigger], [i])
            accepted.append(i)
        except hyperscan.error as exc:
            log.info("trigger %d not accepted by Hyperscan (%s); using re", i, exc)
    return accepted


def _hs_database(triggers: list[Trigger], ids: list[int]) -> Any:
    database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    database.compile(
        expressions=[t.pattern.encode("latin-1") for t in triggers],
        ids=ids,
        elements=len(triggers),
        flags=[_flags(t) for t in triggers],
    )
    return database


# --- windows -----------------------------------------------------------------------------


# Merged windows stop growing here; the next one overlaps it instead.  Long windows
# cost more than their length: phonenumbers' matcher gives up after 65,535
# candidates per call, and Presidio's context enhancer walks every token.
MAX_WINDOW = 16_384


def windows(
    ends_by_trigger: Iterable[tuple[Trigger, list[int]]],
    length: int,
    text: str | None = None,
    max_window: int = MAX_WINDOW,
) -> list[tuple[int, int]]:
    """Merged ``[lo, hi)`` windows around trigger matches (see :func:`iter_windows`)."""
    return list(iter_windows(ends_by_trigger, length, text, max_window))


def iter_windows(
    ends_by_trigger: Iterable[tuple[Trigger, list[int]]],
    length: int,
    text: str | None = None,
    max_window: int = MAX_WINDOW,
) -> Iterator[tuple[int, int]]:
    """Merged ``[lo, hi)`` windows around trigger matches, in text order; widened to
    whole lines when ``text`` is given.

    Each window holds the whole reach of every trigger match merged into it; a
    window never grows past ``max_window`` by merging (the next one overlaps
    it, and results found twice are the same results).  Windows are made as
    they are taken, so a caller that stops early (its findings limit reached)
    does not pay for the rest of a spreadsheet's matches.
    """
    current: tuple[int, int] | None = None
    for lo, hi in _spans_in_order(ends_by_trigger, length):
        if text is not None:
            lo, hi = _snap(text, lo, hi)
        if current is not None and lo <= current[1] and (hi <= current[1] or hi - current[0] <= max_window):
            current = (current[0], max(hi, current[1]))
            continue
        if current is not None:
            yield current
        current = (lo, hi)
    if current is not None:
        yield current


def _spans_in_order(
    ends_by_trigger: Iterable[tuple[Trigger, list[int]]], length: int
) -> Iterator[tuple[int, int]]:
    """Every match's reach ``(lo, hi)``, sorted (each trigger's ends are in order: :class:`Hits`)."""
    runs = [_reach(trigger, ends, length) for trigger, ends in ends_by_trigger if ends]
    if len(runs) == 1:
        return runs[0]
    return heapq.merge(*runs)


def _reach(trigger: Trigger, ends: list[int], length: int) -> Iterator[tuple[int, int]]:
    back = trigger.width + trigger.before
    return ((max(0, end - back), min(length, end + trigger.after)) for end in ends)


def _snap(text: str, lo: int, hi: int) -> tuple[int, int]:
    """Widen to the start of ``lo``'s line and the end of ``hi``'s line (within LINE_SNAP)."""
    start = text.rfind("\n", max(0, lo - LINE_SNAP), lo)
    if start >= 0:
        lo = start + 1
    elif lo <= LINE_SNAP:
        lo = 0
    end = text.find("\n", hi, hi + LINE_SNAP)
    if end >= 0:
        hi = end
    elif hi + LINE_SNAP >= len(text):
        hi = len(text)
    return lo, hi


def interior(start: int, end: int, lo: int, hi: int, length: int) -> bool:
    """Whether a span found in window ``[lo, hi)`` keeps clear of a cut edge."""
    return (lo == 0 or start >= lo + GUARD) and (hi == length or end <= hi - GUARD)


def anchor_positions(
    anchors: Sequence[str], ends_by_anchor: Sequence[list[int]], lower: str
) -> dict[str, list[int]]:
    """Start offsets of each anchor in ``lower`` (verified, so look-alike mappings add nothing)."""
    positions: dict[str, list[int]] = {}
    for anchor, ends in zip(anchors, ends_by_anchor, strict=True):
        n = len(anchor)
        found = [end - n for end in ends if lower.startswith(anchor, end - n)]
        if found:
            positions[anchor] = found[:ANCHOR_LIMIT]
    return positions
