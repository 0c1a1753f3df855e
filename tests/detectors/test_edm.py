"""Exact data match: index building, normalisation, the two-field rule, no plaintext at rest."""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from detectors.config import DetectorConfig
from detectors.edm import EdmRecognizer, build_index
from detectors.engine import Detector, build_analyzer
from gateway.model import Segment

COLUMNS = ["client_id", "full_name", "dob", "case_number"]
SYLLABLES = ["ka", "lo", "mi", "ren", "tho", "vash", "quil", "dor", "bex", "yun", "zor", "phi"]


@dataclass(frozen=True)
class Person:
    client_id: str
    full_name: str
    dob: str  # DD/MM/YYYY
    case_number: str


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


def _people(n: int, seed: int = 7) -> list[Person]:
    rng = random.Random(seed)
    people = []
    for i in range(n):
        people.append(
            Person(
                client_id=f"CL-{100000 + i * 7:06d}",
                full_name=f"{_word(rng)} {_word(rng)}",
                dob=f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(1940, 2010)}",
                case_number=f"CASE-{rng.randint(2015, 2024)}-{rng.randint(0, 999999):06d}",
            )
        )
    # Fixed people with awkward values, at rows 1 and 2.
    people[0] = Person("CL-100-200", "Mary-Anne O'Brien", "01/02/1980", "CASE-2023-000001")
    people[1] = Person("CL-100-201", "John Smith", "31/12/1975", "CASE-2023-000002")
    return people


def _write_csv(path: Path, people: list[Person]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for p in people:
            writer.writerow([p.client_id, p.full_name, p.dob, p.case_number])


@pytest.fixture(scope="module")
def people() -> list[Person]:
    return _people(500)


@pytest.fixture(scope="module")
def records_csv(tmp_path_factory: pytest.TempPathFactory, people: list[Person]) -> Path:
    path = tmp_path_factory.mktemp("edm") / "clients.csv"
    _write_csv(path, people)
    return path


@pytest.fixture(scope="module")
def any_field(tmp_path_factory: pytest.TempPathFactory, records_csv: Path) -> EdmRecognizer:
    """An index where one field is enough."""
    out = tmp_path_factory.mktemp("edm1") / "one.edm"
    build_index(records_csv, COLUMNS, out, require=1)
    return EdmRecognizer(out)


@pytest.fixture(scope="module")
def two_fields(tmp_path_factory: pytest.TempPathFactory, records_csv: Path) -> Path:
    """An index that needs two fields of one record; recognisers are built per test."""
    out = tmp_path_factory.mktemp("edm2") / "two.edm"
    build_index(records_csv, COLUMNS, out, require=2)
    return out


def _matches(recognizer: EdmRecognizer, text: str) -> list[dict[str, str]]:
    return [r.recognition_metadata["attributes"] for r in recognizer.analyze(text, ["EDM_MATCH"])]


def test_build_reports_counts(tmp_path: Path, records_csv: Path, people: list[Person]) -> None:
    stats = build_index(records_csv, COLUMNS, tmp_path / "i.edm", require=2)
    assert stats.records == len(people)
    assert stats.entries == len(people) * len(COLUMNS)
    assert stats.skipped_values == 0
    assert stats.index_bytes == (tmp_path / "i.edm").stat().st_size
    # 8 + 4 + 1 bytes per entry plus a small header: hashes are truncated to 8 bytes.
    assert stats.index_bytes < 13 * stats.entries + 1024


def test_each_exact_field_is_found(any_field: EdmRecognizer, people: list[Person]) -> None:
    person, row = people[42], 43
    for column in COLUMNS:
        value = getattr(person, column)
        text = f"Regarding the matter below, see {value} for details."
        found = _matches(any_field, text)
        assert {"columns": column, "record": str(row), "records": "1"} in found, column


def test_span_points_at_the_value(any_field: EdmRecognizer, people: list[Person]) -> None:
    text = f"Client number: {people[10].client_id}, thanks"
    (result,) = any_field.analyze(text, ["EDM_MATCH"])
    assert text[result.start : result.end] == people[10].client_id


@pytest.mark.parametrize(
    "written",
    [
        "MARY-ANNE O'BRIEN",
        "mary anne   obrien",
        "Mary\nAnne O’Brien",
        "MaryAnne OBrien",
        "ＭＡＲＹ-ＡＮＮＥ O'Brien",
    ],
)
def test_names_with_other_case_spacing_and_punctuation(any_field: EdmRecognizer, written: str) -> None:
    found = _matches(any_field, f"Please call {written} today.")
    assert {"columns": "full_name", "record": "1", "records": "1"} in found


@pytest.mark.parametrize("written", ["cl100200", "CL 100 200", "Cl.100.200", "CL-100200"])
def test_ids_with_other_punctuation(any_field: EdmRecognizer, written: str) -> None:
    found = _matches(any_field, f"Ref {written}.")
    assert {"columns": "client_id", "record": "1", "records": "1"} in found


@pytest.mark.parametrize(
    "written",
    [
        "01/02/1980",
        "1/2/1980",
        "1980-02-01",
        "01.02.1980",
        "1 Feb 1980",
        "1st February 1980",
        "February 1, 1980",
    ],
)
def test_dates_in_any_common_format(any_field: EdmRecognizer, written: str) -> None:
    found = _matches(any_field, f"Date of birth {written}.")
    assert {"columns": "dob", "record": "1", "records": "1"} in found


@pytest.mark.parametrize(
    "near_miss",
    [
        "CL-100-209",  # one digit off
        "CL-100-2000",  # one digit more
        "Mary-Anne O'Brian",  # one letter off
        "Mary-Ann O'Brien",
        "02/01/1980",  # day and month swapped (read day-first)
        "2 Feb 1980",  # one day off
        "CASE-2023-000003",
        "Mary",  # part of a value
    ],
)
def test_near_misses_are_not_found(any_field: EdmRecognizer, near_miss: str) -> None:
    assert _matches(any_field, f"Regarding {near_miss} as discussed.") == []


def test_unrelated_text_is_not_found(any_field: EdmRecognizer) -> None:
    text = "The quarterly report is attached. Meeting moved to 3 March 2024 in room 12." * 20
    assert _matches(any_field, text) == []


def test_name_alone_is_not_enough_when_two_fields_required(two_fields: Path) -> None:
    recognizer = EdmRecognizer(two_fields)
    assert _matches(recognizer, "Could you look after John Smith's file please?") == []


def test_name_and_dob_near_each_other_match(two_fields: Path) -> None:
    recognizer = EdmRecognizer(two_fields)
    text = "Could you look after John Smith (DOB 31 December 1975) please?"
    (result,) = recognizer.analyze(text, ["EDM_MATCH"])
    assert result.recognition_metadata["attributes"] == {
        "columns": "full_name,dob",
        "record": "2",
        "records": "1",
    }
    assert text[result.start : result.end] == "John Smith (DOB 31 December 1975"
    assert result.score == 1.0


def test_name_and_dob_far_apart_do_not_match(two_fields: Path) -> None:
    recognizer = EdmRecognizer(two_fields, window_chars=300)
    filler = "The committee will reconvene next week to consider the other agenda items. " * 6
    assert len(filler) > 300
    assert _matches(recognizer, f"John Smith. {filler} Born 31/12/1975.") == []


def test_fields_of_different_records_do_not_match(two_fields: Path, people: list[Person]) -> None:
    recognizer = EdmRecognizer(two_fields)
    # Name of record 2 with the date of birth of record 1.
    assert _matches(recognizer, f"John Smith born {people[0].dob}") == []


def test_require_can_be_overridden(two_fields: Path, people: list[Person]) -> None:
    recognizer = EdmRecognizer(two_fields, require=3)
    p = people[99]
    assert _matches(recognizer, f"{p.full_name}, {p.dob}") == []
    found = _matches(recognizer, f"{p.full_name}, {p.dob}, case {p.case_number}")
    assert found == [{"columns": "full_name,dob,case_number", "record": "100", "records": "1"}]


def test_many_records_in_one_text(two_fields: Path, people: list[Person]) -> None:
    recognizer = EdmRecognizer(two_fields)
    lines = [f"{p.client_id}\t{p.full_name}\t{p.dob}" for p in people[100:150]]
    found = _matches(recognizer, "\n".join(lines))
    assert sorted(int(f["record"]) for f in found) == list(range(101, 151))


def test_index_file_holds_no_plaintext(two_fields: Path, people: list[Person]) -> None:
    blob = two_fields.read_bytes()
    for p in people:
        for value in (p.client_id, p.full_name, p.dob, p.case_number):
            for form in {value, value.casefold(), value.upper(), "".join(ch for ch in value if ch.isalnum())}:
                assert form.encode() not in blob
                assert form.casefold().encode() not in blob
        assert p.dob[-4:] + p.dob[3:5] + p.dob[:2] not in blob.decode("latin-1")  # YYYYMMDD form
    for word in {w for p in people for w in p.full_name.split()}:
        assert word.casefold().encode() not in blob


def test_secret_key_is_needed_to_use_the_index(tmp_path: Path, records_csv: Path) -> None:
    out = tmp_path / "keyed.edm"
    secret = b"a secret kept outside the index file"
    build_index(records_csv, COLUMNS, out, require=1, key=secret)
    assert secret not in out.read_bytes()
    with pytest.raises(ValueError, match="key"):
        EdmRecognizer(out)
    with pytest.raises(ValueError, match="key"):
        EdmRecognizer(out, key=b"another key")
    found = _matches(EdmRecognizer(out, key=secret), "Ref CL-100-201")
    assert found == [{"columns": "client_id", "record": "2", "records": "1"}]


def test_two_indexes_of_the_same_records_share_no_hashes(tmp_path: Path, records_csv: Path) -> None:
    build_index(records_csv, ["client_id"], tmp_path / "a.edm")
    build_index(records_csv, ["client_id"], tmp_path / "b.edm")
    a, b = EdmRecognizer(tmp_path / "a.edm"), EdmRecognizer(tmp_path / "b.edm")
    assert not set(a.index.keys.tolist()) & set(b.index.keys.tolist())


def test_bad_input_is_refused(tmp_path: Path, records_csv: Path) -> None:
    with pytest.raises(ValueError, match="surname"):
        build_index(records_csv, ["client_id", "surname"], tmp_path / "x.edm")
    with pytest.raises(ValueError, match="require"):
        build_index(records_csv, ["client_id"], tmp_path / "x.edm", require=2)
    (tmp_path / "junk.edm").write_bytes(b"not an index at all")
    with pytest.raises(ValueError, match="not an EDM index"):
        EdmRecognizer(tmp_path / "junk.edm")


def test_values_too_short_or_empty_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("id,name\nA,Kalo Renvash\n,Mitho Dor\n", encoding="utf-8")
    stats = build_index(path, ["id", "name"], tmp_path / "r.edm")
    assert stats.skipped_values == 2
    assert _matches(EdmRecognizer(tmp_path / "r.edm"), "A note: a b c") == []


def test_through_the_analyzer_engine(two_fields: Path) -> None:
    detector = Detector(build_analyzer(DetectorConfig(edm_index=two_fields)))
    text = "Hi, client John Smith, born 31/12/1975, called again."
    findings = [f for f in detector.analyze([Segment("body", text)]) if f.entity_type == "EDM_MATCH"]
    assert len(findings) == 1
    assert findings[0].attributes == {"columns": "full_name,dob", "record": "2", "records": "1"}
    assert "John" not in findings[0].excerpt and "1975" not in findings[0].excerpt


def test_lookup_agrees_with_a_plain_binary_search(two_fields: Path) -> None:
    index = EdmRecognizer(two_fields).index
    rng = np.random.default_rng(5)
    needles = np.concatenate([index.keys[::7], rng.integers(0, 2**63, 500, dtype=np.uint64), index.keys[:3]])
    rng.shuffle(needles)
    left, right = index.lookup(needles)
    assert (left == np.searchsorted(index.keys, needles, side="left"))[right > left].all()
    assert ((right > left) == np.isin(needles, index.keys)).all()
    assert (right == np.searchsorted(index.keys, needles, side="right"))[right > left].all()
