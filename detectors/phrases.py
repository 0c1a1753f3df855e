"""Confidentiality phrases and Privacy Act sensitive-information cues, from editable YAML.

``CONFIDENTIAL_PHRASE`` (attribute ``category``): Cabinet-in-Confidence,
Commercial-in-Confidence, legal professional privilege, legislative secrecy,
embargoes, "not for public release", draft / not government policy, budget …
from ``detectors/data/phrases.yaml``.

``SENSITIVE_INFO`` (attributes ``category`` and ``context``): health, criminal
record, racial or ethnic origin, sexual orientation, religious beliefs …
from ``detectors/data/sensitive_info.yaml``, scored high only when a person is
nearby, since a health word in a newsletter is not personal information.

Both discount text the sender did not write now: quoted reply history (``>``
lines, everything after ``-----Original Message-----`` or ``On … wrote:``) and
disclaimer/signature blocks.  Matches there score 0.2 (below the default
threshold) with attribute ``region``, so a standard footer never fires by itself.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from presidio_analyzer import LocalRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from detectors.custom import RecognizerConfigError
from detectors.prefilter import PATTERN_KEY, Anchored, Trigger, trigger_source

PHRASE_ENTITY = "CONFIDENTIAL_PHRASE"
SENSITIVE_ENTITY = "SENSITIVE_INFO"
ATTRIBUTES_KEY = "attributes"
PHRASE_RECOGNIZER = "ConfidentialPhraseRecognizer"
SENSITIVE_RECOGNIZER = "SensitiveInfoRecognizer"
DATA_DIR = Path(__file__).parent / "data"
PHRASES_FILE = "phrases.yaml"
SENSITIVE_FILE = "sensitive_info.yaml"
IGNORED_SCORE = 0.2  # quoted history and disclaimers: kept, but under the 0.3 default threshold


# --- dictionaries -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Matcher:
    """A pattern, and a lower-case word that must occur in the text for it to match.

    Checking the word with ``in`` first is what keeps a hundred keyword patterns
    fast on megabytes of text; ``anchor`` is empty for hand-written regexes.
    """

    pattern: re.Pattern[str]
    anchor: str = ""
    # Longest possible match, when known (literal phrases): windows around the
    # anchor then need be no wider, which keeps common anchor words cheap.
    reach: int = 0


@dataclass(frozen=True)
class Category:
    """A named set of patterns with the score its matches get."""

    name: str
    score: float
    patterns: tuple[Matcher, ...]


@dataclass(frozen=True)
class PhraseDictionary:
    """``phrases.yaml``: confidentiality categories and the disclaimer cues."""

    categories: tuple[Category, ...]
    disclaimers: tuple[Matcher, ...]


@dataclass(frozen=True)
class SensitiveDictionary:
    """``sensitive_info.yaml``: category cues and what counts as a person nearby."""

    categories: tuple[Category, ...]
    titles: re.Pattern[str]
    role_words: re.Pattern[str] | None
    not_names: frozenset[str]
    score_with_person: float
    score_with_role: float
    score_alone: float
    window: int


def literal_pattern(phrase: str, case_sensitive: bool = False) -> re.Pattern[str]:
    """A whole-word pattern for ``phrase``; spaces and hyphens match any run of either."""
    words = [re.escape(w) for w in re.split(r"[\s-]+", phrase.strip()) if w]
    body = r"[\s-]{1,5}".join(words)
    return re.compile(rf"(?<![\w]){body}(?![\w])", 0 if case_sensitive else re.IGNORECASE)


def literal_matcher(phrase: str, case_sensitive: bool = False) -> Matcher:
    """:func:`literal_pattern` gated on the phrase's longest word."""
    words = [w for w in re.split(r"[\s-]+", phrase.strip()) if w]
    anchor = max(words, key=len).lower()
    reach = sum(len(w) for w in words) + 5 * (len(words) - 1) + 2  # +2: look-arounds see past the match
    return Matcher(literal_pattern(phrase, case_sensitive), anchor, reach)


_LEADING_WORD = re.compile(r"(?:\(\?[a-zA-Z]{1,5}\))?(?:\\b|\^)?([A-Za-z]{3,})(?![?*{|])")


def regex_anchor(source: str) -> str:
    """The literal word a regex must start with (``\\bcabinet[ ]…`` → ``cabinet``), or ""."""
    match = _LEADING_WORD.match(source)
    return match.group(1).lower() if match else ""


def _fail(path: Path, problem: str) -> RecognizerConfigError:
    return RecognizerConfigError(path, problem)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _fail(path, f"cannot read file: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise RecognizerConfigError(path, f"not valid YAML: {getattr(exc, 'problem', exc)}", line) from exc
    if not isinstance(data, dict):
        raise _fail(path, "expected a mapping at the top of the file")
    return data


def _strings(path: Path, where: str, value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _fail(path, f"{where} must be a list of non-empty strings")
    return value


def _compile(path: Path, where: str, source: str, flags: int) -> re.Pattern[str]:
    try:
        return re.compile(source, flags)
    except re.error as exc:
        raise _fail(path, f"{where}: regex {source!r} does not compile: {exc}") from exc


def _score(path: Path, where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise _fail(path, f"{where} must be a number from 0 to 1")
    return float(value)


def _categories(path: Path, raw: Any, literal_keys: tuple[str, str], default_score: float) -> list[Category]:
    """Categories from a ``name: {score, <literal_keys>, patterns, case_sensitive_patterns}`` map."""
    if not isinstance(raw, dict) or not raw:
        raise _fail(path, "'categories' must be a non-empty mapping of category name to entries")
    literal, literal_cs = literal_keys
    allowed = {"score", literal, literal_cs, "patterns", "case_sensitive_patterns"}
    out: list[Category] = []
    for name, spec in raw.items():
        where = f"category {name!r}"
        if not isinstance(spec, dict):
            raise _fail(path, f"{where} must be a mapping")
        unknown = sorted(set(spec) - allowed)
        if unknown:
            allowed_list = ", ".join(sorted(allowed))
            raise _fail(path, f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {allowed_list}")
        literals = _strings(path, f"{where}.{literal}", spec.get(literal))
        literals_cs = _strings(path, f"{where}.{literal_cs}", spec.get(literal_cs))
        patterns = [literal_matcher(p) for p in literals] + [literal_matcher(p, True) for p in literals_cs]
        for key, flags in (("patterns", re.IGNORECASE), ("case_sensitive_patterns", 0)):
            sources = _strings(path, f"{where}.{key}", spec.get(key))
            patterns += [
                Matcher(_compile(path, f"{where}.{key}", s, flags), regex_anchor(s)) for s in sources
            ]
        if not patterns:
            raise _fail(path, f"{where} has nothing to match")
        score = _score(path, f"{where}.score", spec.get("score", default_score))
        out.append(Category(str(name), score, tuple(patterns)))
    return out


def load_phrases(path: Path = DATA_DIR / PHRASES_FILE) -> PhraseDictionary:
    """Load and validate ``phrases.yaml``; raises :class:`RecognizerConfigError`."""
    data = _read_yaml(path)
    categories = _categories(path, data.get("categories"), ("phrases", "case_sensitive_phrases"), 0.6)
    disclaimers = [literal_matcher(d) for d in _strings(path, "'disclaimers'", data.get("disclaimers"))]
    return PhraseDictionary(tuple(categories), tuple(disclaimers))


def load_sensitive(path: Path = DATA_DIR / SENSITIVE_FILE) -> SensitiveDictionary:
    """Load and validate ``sensitive_info.yaml``; raises :class:`RecognizerConfigError`."""
    data = _read_yaml(path)
    high = _score(path, "'score_with_person'", data.get("score_with_person", 0.75))
    categories = _categories(path, data.get("categories"), ("keywords", "case_sensitive_keywords"), high)
    titles = _strings(path, "'titles'", data.get("titles")) or ["Mr", "Mrs", "Ms", "Dr"]
    roles = _strings(path, "'role_words'", data.get("role_words"))
    window = data.get("window", 250)
    if isinstance(window, bool) or not isinstance(window, int) or not 20 <= window <= 5000:
        raise _fail(path, "'window' must be a whole number of characters from 20 to 5000")
    keyword_words = {
        w.lower() for c in data["categories"].values() for k in c.get("keywords", []) for w in k.split()
    }
    not_names = {n.lower() for n in _strings(path, "'not_names'", data.get("not_names"))} | keyword_words
    title_alt = "|".join(re.escape(t) for t in titles)
    return SensitiveDictionary(
        categories=tuple(Category(c.name, high, c.patterns) for c in categories),
        # A title then a capitalised word: "Dr Nguyen", "Ms. O'Brien".
        titles=re.compile(rf"\b(?:{title_alt})\.?[ \t]{{1,3}}[A-Z][A-Za-z'-]{{1,30}}"),
        role_words=re.compile(rf"\b(?:{'|'.join(re.escape(r) for r in roles)})\b", re.IGNORECASE)
        if roles
        else None,
        not_names=frozenset(not_names),
        score_with_person=high,
        score_with_role=_score(path, "'score_with_role'", data.get("score_with_role", 0.5)),
        score_alone=_score(path, "'score_alone'", data.get("score_alone", 0.25)),
        window=window,
    )


# --- regions the sender did not write now -----------------------------------------------------


@dataclass(frozen=True)
class Region:
    """A span of text whose matches are discounted, and why (``quoted`` or ``disclaimer``)."""

    start: int
    end: int
    kind: str


_HISTORY_START = re.compile(
    r"(?im)^[ \t]{0,10}(?:-{2,20}[ \t]{0,5}(?:Original|Forwarded)[ \t]Message[ \t]{0,5}-{2,20}"
    r"|_{10,80}[ \t]{0,5}\r?\n[ \t]{0,5}From:"
    r"|From:[ \t][^\n]{1,200}\r?\n(?:Sent|Date):[ \t])"
)
# "On Tue, 3 May 2024 at 10:02, Jane Citizen <jane@…> wrote:" (possibly wrapped), "Jane wrote:".
_WROTE = re.compile(r"(?m)^[^\n>]{0,200}(?:\r?\n[^\n]{1,200})?[ \t]wrote:[ \t]{0,5}\r?$")
_QUOTED_LINE = re.compile(r"(?m)^[ \t]{0,10}>[^\n]{0,100000}$")
_SIGNATURE = re.compile(r"(?m)^-- ?\r?$")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]{0,40}\r?\n")


# The longest _HISTORY_START match: a search that reads this far past a span finds every
# history marker that starts before it.
_HISTORY_REACH = 320


def ignored_regions(
    text: str, disclaimers: Iterable[Matcher], spans: Sequence[tuple[int, int]] | None = None
) -> list[Region]:
    """Quoted history and disclaimer/signature blocks in ``text``.

    With ``spans``, only the regions that could hold one of them are looked
    for (the lines and paragraphs they are in, history markers before them):
    ``_region_at`` gives the same answer for those spans at a fraction of the
    cost of reading megabytes of text for a handful of matches.
    """
    lower = text.lower()
    regions = _quoted_lines(text, spans)
    starts = [m.start() for m in (_history_start(text, lower, spans),) if m]
    if "wrote:" in text:
        starts += [m.start() for m in (_WROTE.search(text),) if m]
    if starts:
        regions.append(Region(min(starts), len(text), "quoted"))
    signature = _SIGNATURE.search(text) if "--" in text else None
    if signature:
        regions.append(Region(signature.start(), len(text), "disclaimer"))
    paragraphs = _paragraphs(text)
    if spans is None:
        hits = sorted(start for cue in disclaimers for start, _ in _find(cue, text, lower))
    else:
        starts = sorted(s for s, _ in spans)
        paragraphs = [(a, b) for a, b in paragraphs if _any_between(starts, a, b)]
        hits = sorted(
            start for a, b in paragraphs for start in _starts_within(disclaimers, text, lower, a, b)
        )
    if hits:
        # The whole paragraph around a disclaimer sentence is the disclaimer block.
        regions += [Region(a, b, "disclaimer") for a, b in paragraphs if _any_between(hits, a, b)]
    return regions


def _starts_within(matchers: Iterable[Matcher], text: str, lower: str, lo: int, hi: int) -> Iterator[int]:
    """Starts of matches that begin in ``text[lo:hi]`` (look-behinds still see before ``lo``)."""
    for matcher in matchers:
        end = min(len(text), hi + (matcher.reach or ANCHOR_AFTER))  # a match starting by ``hi`` ends by here
        if matcher.anchor and matcher.anchor not in lower[lo:end]:
            continue  # every match contains its anchor word
        for match in matcher.pattern.finditer(text, lo, end):
            if match.start() > hi:
                break
            yield match.start()


def _quoted_lines(text: str, spans: Sequence[tuple[int, int]] | None) -> list[Region]:
    """Lines quoted with ``>``: every one, or those holding the start of a span."""
    if spans is None:
        return [Region(m.start(), m.end(), "quoted") for m in _QUOTED_LINE.finditer(text)]
    regions: list[Region] = []
    line_start, previous = 0, 0
    for start in sorted({s for s, _ in spans}):
        newline = text.rfind("\n", previous, start)  # each stretch of text is searched once
        if newline >= 0:
            line_start = newline + 1
        previous = start
        match = _QUOTED_LINE.match(text, line_start)
        if match and (not regions or regions[-1].start != match.start()):
            regions.append(Region(match.start(), match.end(), "quoted"))
    return regions


def _history_start(text: str, lower: str, spans: Sequence[tuple[int, int]] | None) -> re.Match[str] | None:
    """The first marker of forwarded or replied-to history, if one can start before a span."""
    if "message" not in lower and "from:" not in lower:
        return None  # every alternative holds one of these words
    if spans is None:
        return _HISTORY_START.search(text)
    # A shorter text has no match the whole text lacks (no $ in the pattern), and keeps
    # every match that starts before the last span.
    return _HISTORY_START.search(text, 0, max(s for s, _ in spans) + _HISTORY_REACH) if spans else None


def _any_between(sorted_positions: list[int], start: int, end: int) -> bool:
    i = bisect.bisect_left(sorted_positions, start)
    return i < len(sorted_positions) and sorted_positions[i] <= end


def _paragraphs(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    start = 0
    for brk in _PARAGRAPH_BREAK.finditer(text):
        spans.append((start, brk.start()))
        start = brk.end()
    spans.append((start, len(text)))
    return spans


def _region_at(regions: list[Region], start: int, end: int) -> Region | None:
    """The first of ``regions`` that holds ``start:end`` (see :class:`RegionIndex` for many spans)."""
    return next((r for r in regions if r.start <= start and end <= r.end), None)


class RegionIndex:
    """``_region_at`` for many spans without a walk over every region for each.

    ``regions`` come in runs of ordered, non-overlapping regions (quoted lines,
    then history, then disclaimer paragraphs); a binary search per run finds
    the one region of the run that could hold a span.
    """

    def __init__(self, regions: list[Region]) -> None:
        self._runs: list[tuple[list[int], list[Region]]] = []
        for region in regions:
            if self._runs and self._runs[-1][1][-1].end <= region.start:
                self._runs[-1][0].append(region.start)
                self._runs[-1][1].append(region)
            else:
                self._runs.append(([region.start], [region]))

    def at(self, start: int, end: int) -> Region | None:
        """The first region (in the order given) that holds the non-empty span ``start:end``."""
        for starts, run in self._runs:
            i = bisect.bisect_right(starts, start) - 1
            if i >= 0 and run[i].start <= start and end <= run[i].end:
                return run[i]
        return None


# --- recognisers ------------------------------------------------------------------------------


def _result(
    recognizer: LocalRecognizer, entity: str, start: int, end: int, score: float, attributes: dict[str, str]
) -> RecognizerResult:
    name = PHRASE_RECOGNIZER if entity == PHRASE_ENTITY else SENSITIVE_RECOGNIZER
    return RecognizerResult(
        entity_type=entity,
        start=start,
        end=end,
        score=score,
        recognition_metadata={
            RecognizerResult.RECOGNIZER_NAME_KEY: name,
            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: recognizer.id,
            ATTRIBUTES_KEY: attributes,
        },
    )


# A match contains its anchor word: search only around the anchor's occurrences.  Python's
# `re` scans a pattern that starts with a look-behind at every position, which is what made
# a hundred keyword patterns slow on megabytes of HTML.
ANCHOR_BEFORE = 200
ANCHOR_AFTER = 1000


# Where each anchor word starts in ``text.lower()``, when a prefilter already knows.
Positions = Mapping[str, Sequence[int]]


def _find(
    matcher: Matcher, text: str, lower: str, positions: Positions | None = None
) -> Iterator[tuple[int, int]]:
    """Spans of ``matcher`` in ``text`` (``lower`` is ``text.lower()``)."""
    if positions is not None and PATTERN_KEY + matcher.pattern.pattern in positions:
        # A regex the prefilter ran as a trigger: search just before where its matches end.
        ends = positions[PATTERN_KEY + matcher.pattern.pattern]
        reach = _reach(matcher)
        for lo, hi in _merged((max(0, e - reach), min(len(text), e + 8)) for e in ends):
            yield from (m.span() for m in matcher.pattern.finditer(text, lo, hi))
        return
    if not matcher.anchor or len(lower) != len(text):  # lower() changed offsets: scan it all
        yield from (m.span() for m in matcher.pattern.finditer(text))
        return
    for lo, hi in _windows(lower, matcher.anchor, positions, matcher.reach):
        yield from (m.span() for m in matcher.pattern.finditer(text, lo, hi))


# Longest match of an anchorless regex before the end its trigger reported.
PATTERN_REACH = 1000


def _merged(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in spans:
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(hi, out[-1][1]))
        else:
            out.append((lo, hi))
    return out


def _occurrences(lower: str, anchor: str) -> Iterator[int]:
    pos = lower.find(anchor)
    while pos >= 0:
        yield pos
        pos = lower.find(anchor, pos + 1)


def _windows(
    lower: str, anchor: str, positions: Positions | None = None, reach: int = 0
) -> list[tuple[int, int]]:
    """Merged windows around each occurrence: ``reach`` either side, else ANCHOR_BEFORE/AFTER."""
    windows: list[tuple[int, int]] = []
    found = positions.get(anchor, ()) if positions is not None else _occurrences(lower, anchor)
    before, after = (reach, reach) if reach else (ANCHOR_BEFORE, ANCHOR_AFTER)
    for pos in found:
        lo, hi = max(0, pos - before), min(len(lower), pos + after)
        if windows and lo <= windows[-1][1]:
            windows[-1] = (windows[-1][0], hi)
        else:
            windows.append((lo, hi))
    return windows


def _matches(
    categories: Iterable[Category], text: str, positions: Positions | None = None
) -> list[tuple[Category, int, int]]:
    """Category matches, longest first where two overlap within one category."""
    out: list[tuple[Category, int, int]] = []
    lower = text.lower()
    for category in categories:
        spans = [span for matcher in category.patterns for span in _find(matcher, text, lower, positions)]
        out.extend((category, s, e) for s, e in _outermost(spans))
    return out


def prefilter_spec_for(categories: Iterable[Category]) -> Anchored | None:
    """Prefilter triggers for every matcher, for the fast path (None: an anchor is not ASCII).

    A matcher whose regex Hyperscan can run (in prefilter mode) is a trigger of
    its own, so a common anchor word ("not", "forward") costs nothing where the
    phrase is absent; otherwise its anchor word is the trigger.  A regex with
    neither is run on the whole text, so then the recogniser runs even where no
    anchor occurs.
    """
    anchors: set[str] = set()
    patterns: dict[str, Trigger] = {}
    always = False
    for matcher in (m for c in categories for m in c.patterns):
        source = trigger_source(matcher.pattern.pattern)
        if source is None:
            if matcher.anchor:
                anchors.add(matcher.anchor)
            else:
                always = True
            continue
        caseless = bool(matcher.pattern.flags & re.IGNORECASE)
        key = PATTERN_KEY + matcher.pattern.pattern
        patterns[key] = Trigger(source, _reach(matcher), 0, 0, caseless, prefilter_mode=True, key=key)
    if not all(a.isascii() for a in anchors):
        return None  # Hyperscan folds ASCII case only
    return Anchored(tuple(sorted(anchors)), tuple(patterns.values()), always)


def _reach(matcher: Matcher) -> int:
    """How far before the end of its trigger's match a match of ``matcher`` may start."""
    return matcher.reach or PATTERN_REACH


def _outermost(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Non-empty spans not contained in another (one sort and one sweep, not all pairs)."""
    kept: list[tuple[int, int]] = []
    reach = -1
    for start, end in sorted(set(spans), key=lambda se: (se[0], -se[1])):
        if end > start and end > reach:
            kept.append((start, end))
            reach = end
    return kept


_Dictionary = TypeVar("_Dictionary", "PhraseDictionary", "SensitiveDictionary")


class _DictionaryRecognizer(LocalRecognizer, Generic[_Dictionary]):
    """A recogniser driven by an editable keyword dictionary: the plain path finds
    the anchor words itself, the fast path hands over where its prefilter saw them."""

    dictionary: _Dictionary

    def load(self) -> None:
        """Nothing to load: the dictionary was loaded and validated by the caller."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        """Matches of the dictionary in ``text`` (see :meth:`analyze_anchored`)."""
        return self.analyze_anchored(text, None, entities, nlp_artifacts)

    def prefilter_spec(self) -> Anchored | None:
        """Where the fast path runs this recogniser: around its anchor words."""
        return prefilter_spec_for(self.dictionary.categories)

    def analyze_anchored(
        self,
        text: str,
        positions: Positions | None,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
    ) -> list[RecognizerResult]:
        raise NotImplementedError


class ConfidentialPhraseRecognizer(_DictionaryRecognizer[PhraseDictionary]):
    """``CONFIDENTIAL_PHRASE`` from a :class:`PhraseDictionary`; inside quoted history
    or a disclaimer a match scores 0.2."""

    def __init__(self, dictionary: PhraseDictionary) -> None:
        self.dictionary = dictionary
        super().__init__(supported_entities=[PHRASE_ENTITY], name=PHRASE_RECOGNIZER)

    def analyze_anchored(
        self,
        text: str,
        positions: Positions | None,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
    ) -> list[RecognizerResult]:
        """:meth:`analyze`, given where the anchor words start (None: find them here)."""
        if entities and PHRASE_ENTITY not in entities:
            return []
        matches = _matches(self.dictionary.categories, text, positions)
        # Quoted history and disclaimers need the whole text, but only when something matched.
        spans = [(start, end) for _, start, end in matches]
        regions = RegionIndex(ignored_regions(text, self.dictionary.disclaimers, spans) if matches else [])
        results = []
        for category, start, end in matches:
            attributes = {"category": category.name}
            score = category.score
            region = regions.at(start, end)
            if region is not None:
                attributes["region"] = region.kind
                score = min(score, IGNORED_SCORE)
            results.append(_result(self, PHRASE_ENTITY, start, end, score, attributes))
        return results


# Name-like pair: two capitalised words; a hyphen or apostrophe inside is fine (O'Brien).
# Exactly two: three or more capitalised words in a row are a title ("American Cancer Society").
_NAME_PAIR = re.compile(
    r"(?<![A-Z][a-z]\s)(?<![A-Za-z'-])([A-Z][a-z][A-Za-z'-]{0,20})[ \t]{1,2}([A-Z][a-z][A-Za-z'-]{0,20})"
    r"(?![A-Za-z'-])(?!\s[A-Z][a-z])"
)
# Identifier-like: a long number (6+ digits, spaced in threes or not), an ID with a letter
# prefix/suffix, or a date of birth.
_IDENTIFIER = re.compile(
    # not inside a URL or path ("/0112795/")
    r"(?<![/=.,\w-])(?:\d{6,}|\d{3}[ -]\d{3}[ -]\d{3,4}|[A-Z]{1,4}\d{5,}[A-Z]?|\d{9}[A-Z])(?![/\w])"
    r"|\b(?:DOB|D\.O\.B\.?|date of birth)\b|\b\d{1,2}/\d{1,2}/(?:19|20)\d{2}\b",
    re.IGNORECASE,
)


class SensitiveInfoRecognizer(_DictionaryRecognizer[SensitiveDictionary]):
    """``SENSITIVE_INFO`` cues from a :class:`SensitiveDictionary`, scored by a person
    nearby; attributes ``category`` and ``context`` (title, name, identifier, person, role, none)."""

    def __init__(self, dictionary: SensitiveDictionary, disclaimers: tuple[Matcher, ...] = ()) -> None:
        self.dictionary = dictionary
        self.disclaimers = disclaimers
        super().__init__(supported_entities=[SENSITIVE_ENTITY], name=SENSITIVE_RECOGNIZER)

    def analyze_anchored(
        self,
        text: str,
        positions: Positions | None,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
    ) -> list[RecognizerResult]:
        """:meth:`analyze`, given where the cue words start (None: find them here)."""
        if entities and SENSITIVE_ENTITY not in entities:
            return []
        matches = _matches(self.dictionary.categories, text, positions)
        if not matches:
            return []
        regions = RegionIndex(
            ignored_regions(text, self.disclaimers, [(start, end) for _, start, end in matches])
        )
        people = _ner_people(nlp_artifacts)
        paragraphs = _paragraphs(text)
        paragraph_starts = [a for a, _ in paragraphs]
        results = []
        for category, start, end in matches:
            lo, hi = self._window(paragraphs, paragraph_starts, start, end)
            context = self.person_context(text, lo, hi, start, end, people)
            score = self._score(context)
            attributes = {"category": category.name, "context": context}
            region = regions.at(start, end)
            if region is not None:
                attributes["region"] = region.kind
                score = min(score, IGNORED_SCORE)
            results.append(_result(self, SENSITIVE_ENTITY, start, end, score, attributes))
        return results

    def _window(
        self, paragraphs: list[tuple[int, int]], starts: list[int], start: int, end: int
    ) -> tuple[int, int]:
        """The window around a match, clipped to its paragraph (``starts``: the paragraphs' starts)."""
        i = bisect.bisect_right(starts, start) - 1
        para = paragraphs[i] if i >= 0 and start <= paragraphs[i][1] else (0, end)
        return max(para[0], start - self.dictionary.window), min(para[1], end + self.dictionary.window)

    def _score(self, context: str) -> float:
        if context in ("title", "name", "identifier", "person"):
            return self.dictionary.score_with_person
        if context == "role":
            return self.dictionary.score_with_role
        return self.dictionary.score_alone

    def person_context(
        self, text: str, lo: int, hi: int, start: int, end: int, people: list[tuple[int, int]]
    ) -> str:
        """What in ``text[lo:hi]`` shows the cue at ``start:end`` is about a person."""
        window = text[lo:hi]
        if any(lo <= s and e <= hi for s, e in people):
            return "person"
        if self.dictionary.titles.search(window):
            return "title"
        if _IDENTIFIER.search(window):
            return "identifier"
        for match in _NAME_PAIR.finditer(window):
            s, e = lo + match.start(), lo + match.end()
            if s < end and start < e:
                continue  # the cue itself ("Torres Strait")
            if not {match.group(1).lower(), match.group(2).lower()} & self.dictionary.not_names:
                return "name"
        if self.dictionary.role_words is not None and self.dictionary.role_words.search(window):
            return "role"
        return "none"


def _ner_people(nlp_artifacts: NlpArtifacts | None) -> list[tuple[int, int]]:
    """PERSON spans from spaCy, when the NER model is loaded (none with the blank pipeline)."""
    if nlp_artifacts is None or not nlp_artifacts.entities:
        return []
    return [(e.start_char, e.end_char) for e in nlp_artifacts.entities if e.label_ == "PERSON"]


def recognizers(data_dir: Path = DATA_DIR) -> list[ConfidentialPhraseRecognizer | SensitiveInfoRecognizer]:
    """Both recognisers, built from the YAML dictionaries in ``data_dir``."""
    phrases = load_phrases(data_dir / PHRASES_FILE)
    sensitive = load_sensitive(data_dir / SENSITIVE_FILE)
    return [
        ConfidentialPhraseRecognizer(phrases),
        SensitiveInfoRecognizer(sensitive, phrases.disclaimers),
    ]
