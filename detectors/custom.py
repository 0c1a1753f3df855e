"""Agency-defined recognisers: Presidio's recogniser YAML, validated at start-up.

Each ``*.yaml`` file in ``DetectorConfig.recognizers_dir`` holds Presidio's format
(``presidio_analyzer/conf/example_recognizers.yaml``)::

    recognizers:
      - name: Agency case number
        supported_entity: AGENCY_CASE_NUMBER
        patterns:
          - {name: case number, regex: '\\bCASE-\\d{4}-\\d{6}\\b', score: 0.85}
        context: [case, matter, file]

Everything is checked before the gateway starts scanning, and the first problem
raises :class:`RecognizerConfigError` naming the file, the line of the recogniser
and what is wrong: a typo in a key, a bad score, a regex that does not compile or
that backtracks for seconds on a short probe string.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regex
import yaml
from presidio_analyzer import PatternRecognizer

# Presidio compiles patterns with the `regex` module and these flags (PatternRecognizer default).
PRESIDIO_FLAGS = regex.DOTALL | regex.MULTILINE | regex.IGNORECASE
ENTITY_NAME = regex.compile(r"[A-Z][A-Z0-9_]{1,63}")
RECOGNIZER_KEYS = frozenset(
    {
        "name",
        "supported_entity",
        "supported_entities",
        "supported_language",
        "patterns",
        "deny_list",
        "deny_list_score",
        "context",
        "version",
    }
)
PATTERN_KEYS = frozenset({"name", "regex", "score"})
# Strings a slow pattern tends to choke on; each search must finish within the timeout.
PROBE_TIMEOUT_SECONDS = 0.5
# A trailing character that breaks the match forces a backtracking engine to try every split.
PROBES = tuple(
    body * n + end
    for body in ("a", "A", "1", " ", "-", "aA1-_. ", "a ")
    for n in (40, 5000)
    for end in ("", "!")
)


class RecognizerConfigError(ValueError):
    """A recogniser or keyword file the gateway cannot use; the message says where and why."""

    def __init__(self, path: Path | str, problem: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.problem = problem
        self.line = line
        where = f"{self.path}:{line}" if line else str(self.path)
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class _Entry:
    """One recogniser mapping from a file, with the line it starts on."""

    index: int
    line: int | None
    data: Any


def load_custom_recognizers(directory: Path | None) -> list[PatternRecognizer]:
    """Every recogniser in ``directory/*.yaml`` (sorted by file name); [] when None.

    Raises :class:`RecognizerConfigError` on the first problem, including a
    missing directory and a recogniser name used twice.
    """
    if directory is None:
        return []
    directory = Path(directory)
    if not directory.is_dir():
        raise RecognizerConfigError(directory, "recognizers_dir is not a directory")
    recognizers: list[PatternRecognizer] = []
    seen: dict[str, Path] = {}
    for path in _yaml_files(directory):
        for name, recognizer in _load_file(path):
            if name in seen:
                raise RecognizerConfigError(path, f"recogniser name {name!r} is already used in {seen[name]}")
            seen[name] = path
            recognizers.append(recognizer)
    return recognizers


def custom_entities(directory: Path | None) -> frozenset[str]:
    """Entity types the agency recognisers can emit (for policy validation)."""
    return frozenset(e for r in load_custom_recognizers(directory) for e in r.supported_entities)


def _yaml_files(directory: Path) -> Iterator[Path]:
    yield from sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def load_recognizer_file(path: Path) -> list[PatternRecognizer]:
    """The recognisers in one Presidio-format YAML file, validated."""
    return [recognizer for _, recognizer in _load_file(Path(path))]


def _load_file(path: Path) -> list[tuple[str, PatternRecognizer]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecognizerConfigError(path, f"cannot read file: {exc}") from exc
    return [(str(entry.data.get("name")), _build(path, entry)) for entry in _entries(path, text)]


def _entries(path: Path, text: str) -> list[_Entry]:
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise RecognizerConfigError(path, f"not valid YAML: {getattr(exc, 'problem', exc)}", line) from exc
    if not isinstance(data, dict) or "recognizers" not in data:
        raise RecognizerConfigError(path, "expected a mapping with a 'recognizers' list at the top")
    items = data["recognizers"]
    if not isinstance(items, list) or not items:
        raise RecognizerConfigError(path, "'recognizers' must be a non-empty list")
    lines = _item_lines(root)
    return [_Entry(i, lines[i] if i < len(lines) else None, item) for i, item in enumerate(items)]


def _item_lines(root: yaml.Node | None) -> list[int]:
    """1-based start line of each item of the top-level ``recognizers`` sequence."""
    if not isinstance(root, yaml.MappingNode):
        return []
    for key, value in root.value:
        if getattr(key, "value", None) == "recognizers" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def _build(path: Path, entry: _Entry) -> PatternRecognizer:
    data = entry.data

    def fail(problem: str) -> RecognizerConfigError:
        label = data.get("name") if isinstance(data, dict) else None
        who = f"recogniser {label!r}" if label else f"recogniser #{entry.index + 1}"
        return RecognizerConfigError(path, f"{who}: {problem}", entry.line)

    if not isinstance(data, dict):
        raise fail("must be a mapping of keys (name, supported_entity, patterns, …)")
    unknown = sorted(set(data) - RECOGNIZER_KEYS)
    if unknown:
        raise fail(f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(RECOGNIZER_KEYS))}")
    problem = _check_recognizer(data)
    if problem:
        raise fail(problem)
    try:
        return PatternRecognizer.from_dict(data)
    except (ValueError, TypeError) as exc:
        raise fail(str(exc)) from exc


def _check_recognizer(data: dict[str, Any]) -> str | None:
    """The first problem with a recogniser mapping, or None."""
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        return "'name' must be a non-empty string"
    entity_problem = _check_entity(data)
    if entity_problem:
        return entity_problem
    if data.get("supported_language", "en") != "en":
        return "'supported_language' must be 'en' (the gateway analyses English only)"
    if not data.get("patterns") and not data.get("deny_list"):
        return "needs 'patterns' or 'deny_list'"
    for key in ("deny_list", "context"):
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            return f"'{key}' must be a list of non-empty strings"
    if "deny_list_score" in data and not _is_score(data["deny_list_score"]):
        return "'deny_list_score' must be a number from 0 to 1"
    patterns = data.get("patterns", [])
    if not isinstance(patterns, list):
        return "'patterns' must be a list"
    for number, pattern in enumerate(patterns, start=1):
        problem = _check_pattern(pattern)
        if problem:
            return f"pattern #{number}: {problem}"
    return None


def _check_entity(data: dict[str, Any]) -> str | None:
    if "supported_entity" in data and "supported_entities" in data:
        return "give 'supported_entity' or 'supported_entities', not both"
    entity = data.get("supported_entity")
    if "supported_entities" in data:
        entities = data["supported_entities"]
        if not isinstance(entities, list) or len(entities) != 1:
            return "'supported_entities' must list exactly one entity type"
        entity = entities[0]
    if not isinstance(entity, str) or not ENTITY_NAME.fullmatch(entity):
        return "'supported_entity' must be an upper-case entity name such as AGENCY_CASE_NUMBER"
    return None


def _check_pattern(pattern: Any) -> str | None:
    if not isinstance(pattern, dict):
        return "must be a mapping with name, regex and score"
    unknown = sorted(set(pattern) - PATTERN_KEYS)
    if unknown:
        return f"unknown key(s) {', '.join(unknown)}; allowed: name, regex, score"
    if not isinstance(pattern.get("name"), str) or not pattern["name"].strip():
        return "'name' must be a non-empty string"
    if not _is_score(pattern.get("score")):
        return "'score' must be a number from 0 to 1"
    source = pattern.get("regex")
    if not isinstance(source, str) or not source:
        return "'regex' must be a non-empty string"
    return check_regex(source)


def check_regex(source: str, flags: int = PRESIDIO_FLAGS) -> str | None:
    """Why ``source`` is unusable (does not compile, matches empty text, or is slow), or None."""
    try:
        compiled = regex.compile(source, flags)
    except regex.error as exc:
        return f"regex does not compile: {exc}"
    if compiled.fullmatch(""):
        return "regex matches the empty string, so it would match everywhere"
    for probe in PROBES:
        try:
            compiled.search(probe, timeout=PROBE_TIMEOUT_SECONDS)
        except TimeoutError:
            return (
                f"regex takes over {PROBE_TIMEOUT_SECONDS}s on a {len(probe)}-character probe "
                "(catastrophic backtracking?); bound its repetitions, e.g. {1,40} instead of +"
            )
    return None


def _is_score(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1
