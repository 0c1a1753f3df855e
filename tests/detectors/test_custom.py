"""Agency-defined recognisers in Presidio's YAML format."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors import registry
from detectors.config import DetectorConfig
from detectors.custom import (
    RecognizerConfigError,
    check_regex,
    custom_entities,
    load_custom_recognizers,
    load_recognizer_file,
)
from detectors.engine import Detector, build_analyzer
from gateway.model import Segment

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_DIR = REPO / "policies" / "recognizers"


def write(directory: Path, name: str, content: str) -> Path:
    path = directory / name
    path.write_text(content, encoding="utf-8")
    return path


def test_shipped_example_loads_and_detects_through_engine() -> None:
    recognizers = load_custom_recognizers(EXAMPLE_DIR)
    assert {"AGENCY_CASE_NUMBER", "AGENCY_CODENAME"} <= custom_entities(EXAMPLE_DIR)
    assert len(recognizers) >= 2
    detector = Detector(build_analyzer(DetectorConfig(recognizers_dir=EXAMPLE_DIR)))
    text = "Please update case file CASE-2024-000123 before Operation Wattle starts."
    findings = detector.analyze([Segment("body", text)])
    by_type = {f.entity_type: f for f in findings}
    case = by_type["AGENCY_CASE_NUMBER"]
    assert text[case.start : case.end] == "CASE-2024-000123"
    assert case.excerpt.endswith("123") and "2024-000" not in case.excerpt
    assert case.score >= 0.85  # context word "case" can only raise it
    assert "AGENCY_CODENAME" in by_type


def test_no_directory_means_no_recognizers() -> None:
    assert load_custom_recognizers(None) == []


def test_registry_includes_agency_recognizers() -> None:
    recognizers = registry.pattern_recognizers(DetectorConfig(recognizers_dir=EXAMPLE_DIR))
    names = {str(r.to_dict()["name"]) for r in recognizers}
    assert "Agency case number" in names
    assert {"ProtectiveMarkingRecognizer", "SecretRecognizer", "ConfidentialPhraseRecognizer"} <= names


def test_case_number_does_not_match_lookalikes(tmp_path: Path) -> None:
    [recognizer] = load_recognizer_file(EXAMPLE_DIR / "example.yaml")[:1]
    text = "CASE-24-000123, CASE-2024-00012, NOTCASE-2024-000123X"
    assert recognizer.analyze(text, ["AGENCY_CASE_NUMBER"]) == []


GOOD = """recognizers:
  - name: Staff number
    supported_entity: STAFF_NUMBER
    patterns:
      - {name: staff, regex: '\\bS\\d{6}\\b', score: 0.6}
"""


@pytest.mark.parametrize(
    ("content", "problem", "line"),
    [
        ("recognizers: [\n", "not valid YAML", 2),
        ("- just a list\n", "'recognizers' list", None),
        ("recognizers: []\n", "non-empty list", None),
        (
            "recognizers:\n  - name: X\n    supported_entity: X_ID\n    patterns:\n"
            "      - {name: p, regex: '(unclosed', score: 0.5}\n",
            "regex does not compile",
            2,
        ),
        (
            "recognizers:\n  - name: X\n    supported_entity: X_ID\n    patterns:\n"
            "      - {name: p, regex: 'X\\d+', score: 1.5}\n",
            "'score' must be a number from 0 to 1",
            2,
        ),
        (
            "recognizers:\n  - name: X\n    supported_entity: X_ID\n    pattern:\n"
            "      - {name: p, regex: 'X\\d+', score: 0.5}\n",
            "unknown key(s) pattern",
            2,
        ),
        (
            "recognizers:\n  - name: X\n    supported_entity: x id\n    deny_list: [a]\n",
            "upper-case entity",
            2,
        ),
        ("recognizers:\n  - name: X\n    supported_entity: X_ID\n", "needs 'patterns' or 'deny_list'", 2),
        (
            "recognizers:\n  - name: X\n    supported_entity: X_ID\n"
            "    supported_language: de\n    deny_list: [a]\n",
            "'supported_language' must be 'en'",
            2,
        ),
        (
            "recognizers:\n  - name: X\n    supported_entity: X_ID\n    patterns:\n"
            "      - {name: p, regex: '(a+)+$', score: 0.5}\n",
            "catastrophic backtracking",
            2,
        ),
        (
            "recognizers:\n  - name: X\n    supported_entity: X_ID\n    patterns:\n"
            "      - {name: p, regex: 'a*', score: 0.5}\n",
            "matches the empty string",
            2,
        ),
        (
            GOOD + "  - name: Second\n    supported_entity: Y_ID\n    deny_list: 'not a list'\n",
            "list of non-empty",
            6,
        ),
    ],
)
def test_bad_files_name_file_line_and_problem(
    tmp_path: Path, content: str, problem: str, line: int | None
) -> None:
    path = write(tmp_path, "agency.yaml", content)
    with pytest.raises(RecognizerConfigError) as error:
        load_custom_recognizers(tmp_path)
    message = str(error.value)
    assert problem in message
    assert str(path) in message
    assert error.value.line == line


def test_duplicate_names_across_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "b.yaml", GOOD)
    with pytest.raises(RecognizerConfigError, match="already used in"):
        load_custom_recognizers(tmp_path)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(RecognizerConfigError, match="not a directory"):
        load_custom_recognizers(tmp_path / "nope")


def test_build_analyzer_fails_fast_on_bad_config(tmp_path: Path) -> None:
    write(tmp_path, "bad.yaml", "recognizers:\n  - name: X\n")
    with pytest.raises(RecognizerConfigError):
        build_analyzer(DetectorConfig(recognizers_dir=tmp_path))


def test_valid_file_loads_other_files_ignored(tmp_path: Path) -> None:
    write(tmp_path, "staff.yaml", GOOD)
    write(tmp_path, "README.txt", "not yaml: [")
    [recognizer] = load_custom_recognizers(tmp_path)
    [result] = recognizer.analyze("staff S123456 here", ["STAFF_NUMBER"])
    assert (result.entity_type, result.score) == ("STAFF_NUMBER", 0.6)


def test_check_regex() -> None:
    assert check_regex(r"\bCASE-\d{4}-\d{6}\b") is None
    assert "does not compile" in (check_regex("[") or "")
    assert "backtracking" in (check_regex(r"(\w+\s?)+$") or "")
