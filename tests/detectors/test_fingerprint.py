"""Document fingerprints: edited pastes are caught, unrelated text and common phrases are not."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from detectors.config import DetectorConfig
from detectors.engine import Detector, build_analyzer
from detectors.fingerprint import (
    K_WORDS,
    WINNOW,
    FingerprintRecognizer,
    add_documents,
    fingerprint,
    list_documents,
    remove_document,
)
from gateway.model import Segment

COMMON = "please find attached the report for your review and let me know if you have any questions"
FUNCTION_WORDS = ["the", "of", "and", "to", "in", "a", "for", "that", "is", "on", "with", "as", "by"]
SYLLABLES = ["ka", "lo", "mi", "ren", "tho", "vash", "quil", "dor", "bex", "yun", "zor", "phi", "sta", "gri"]


def _prose(seed: int, words: int) -> str:
    """Synthetic prose: invented content words mixed with English function words, in sentences."""
    rng = random.Random(seed)
    vocabulary = ["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(400)]
    out: list[str] = []
    while len(out) < words:
        sentence = [rng.choice(FUNCTION_WORDS if rng.random() < 0.35 else vocabulary) for _ in range(12)]
        sentence[0] = sentence[0].capitalize()
        sentence[-1] += "."
        out.extend(sentence)
    return " ".join(out[:words])


def _edit(paragraph: str, seed: int, changes: int) -> str:
    """Change a few words, reflow the lines and change the case, as someone pasting would."""
    rng = random.Random(seed)
    words = paragraph.split()
    for i in rng.sample(range(len(words)), changes):
        words[i] = "altered"
    lines = [" ".join(words[i : i + 7]) for i in range(0, len(words), 7)]
    return "\n".join(lines).upper().replace(" ", "  ")


@pytest.fixture
def cabinet(tmp_path: Path) -> tuple[Path, str]:
    """A registered 'Cabinet submission' containing a common phrase, and its text."""
    text = _prose(1, 1200) + " " + COMMON + ". " + _prose(2, 300)
    doc = tmp_path / "cabinet-submission.txt"
    doc.write_text(text, encoding="utf-8")
    db = tmp_path / "fingerprints.db"
    add_documents(db, [doc], label="Cabinet submission 2024/17")
    return db, text


def _paragraph(text: str, start: int = 400, words: int = 110) -> str:
    return " ".join(text.split()[start : start + words])


def _found(db: Path, text: str, **options: float) -> list[dict[str, str]]:
    recognizer = FingerprintRecognizer(db, **options)  # type: ignore[arg-type]
    return [r.recognition_metadata["attributes"] for r in recognizer.analyze(text, ["DOCUMENT_FINGERPRINT"])]


def test_registration_stores_counts(cabinet: tuple[Path, str]) -> None:
    db, text = cabinet
    (doc,) = list_documents(db)
    assert doc.label == "Cabinet submission 2024/17"
    assert doc.shingles == len(text.split()) - K_WORDS + 1
    # Winnowing keeps roughly 2/(w+1) of the shingles.
    assert 0.25 * doc.shingles < doc.fingerprints < 0.6 * doc.shingles


def test_pasted_paragraph_with_light_edits_matches(cabinet: tuple[Path, str]) -> None:
    db, text = cabinet
    email = "Hi Sam,\n\nHere is the bit you asked about:\n\n" + _edit(_paragraph(text), 3, 4) + "\n\nCheers"
    (found,) = _found(db, email)
    assert found["document"] == "Cabinet submission 2024/17"
    assert found["document_id"] == "1"
    assert float(found["similarity"]) >= 0.5


def test_span_covers_the_pasted_passage(cabinet: tuple[Path, str]) -> None:
    db, text = cabinet
    intro = "Background for tomorrow's meeting follows. "
    email = intro + _paragraph(text) + " Regards."
    (result,) = FingerprintRecognizer(db).analyze(email, ["DOCUMENT_FINGERPRINT"])
    assert len(intro) - 1 <= result.start <= len(intro) + 40
    assert result.end >= len(email) - len(" Regards.") - 40


def test_paragraph_inside_a_long_message_matches_by_run(cabinet: tuple[Path, str]) -> None:
    db, text = cabinet
    email = _prose(50, 3000) + "\n\n" + _edit(_paragraph(text, 900, 80), 4, 3) + "\n\n" + _prose(51, 3000)
    (found,) = _found(db, email)
    assert float(found["similarity"]) < 0.5  # caught by the run of shared fingerprints, not the ratio
    assert found["document"] == "Cabinet submission 2024/17"


def test_whole_document_matches_with_high_similarity(cabinet: tuple[Path, str]) -> None:
    db, text = cabinet
    (found,) = _found(db, text.lower())
    assert found["similarity"] == "1.00"


def test_heavily_rewritten_paragraph_does_not_match(cabinet: tuple[Path, str]) -> None:
    db, text = cabinet
    # One word in three changed: no run of K_WORDS words survives.
    words = _paragraph(text).split()
    rewritten = " ".join("changed" if i % 3 == 0 else w for i, w in enumerate(words))
    assert _found(db, rewritten) == []


def test_unrelated_text_does_not_match(cabinet: tuple[Path, str]) -> None:
    db, _ = cabinet
    assert _found(db, _prose(99, 2000)) == []


def test_short_common_phrase_does_not_match(cabinet: tuple[Path, str]) -> None:
    db, _ = cabinet
    email = f"Hi Alex,\n\n{COMMON.capitalize()}.\n\nThanks,\nJo"
    assert _found(db, email) == []


def test_a_few_sentences_are_below_the_bar(cabinet: tuple[Path, str]) -> None:
    db, text = cabinet
    assert _found(db, _paragraph(text, 200, 12)) == []


def test_shared_run_of_k_plus_w_minus_1_words_is_always_seen() -> None:
    # The winnowing guarantee, over many random contexts.
    key = b"k" * 32
    for seed in range(200):
        shared = _prose(1000 + seed, K_WORDS + WINNOW - 1)
        left = _prose(2000 + seed, 30) + " " + shared + " " + _prose(3000 + seed, 30)
        right = _prose(4000 + seed, 5) + " " + shared + " " + _prose(5000 + seed, 50)
        _, a = fingerprint(left, key)
        _, b = fingerprint(right, key)
        assert {f.hash for f in a} & {f.hash for f in b}, seed


def test_database_holds_no_plaintext(cabinet: tuple[Path, str]) -> None:
    db, text = cabinet
    blob = db.read_bytes()
    words = text.split()
    for word in {w.strip(".").lower() for w in words if len(w) >= 6}:
        assert word.encode() not in blob
    for i in range(0, len(words) - K_WORDS, 97):
        assert " ".join(words[i : i + K_WORDS]).lower().encode() not in blob
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"meta", "documents", "fingerprints"}


def test_list_and_remove_documents(tmp_path: Path, cabinet: tuple[Path, str]) -> None:
    db, text = cabinet
    other = tmp_path / "legal-advice.txt"
    other.write_text(_prose(7, 800), encoding="utf-8")
    (added,) = add_documents(db, [other])
    assert added.label == "legal-advice.txt"
    assert [d.doc_id for d in list_documents(db)] == [1, added.doc_id]
    paste = _paragraph(other.read_text(encoding="utf-8"), 100)
    assert [f["document"] for f in _found(db, paste)] == ["legal-advice.txt"]
    assert remove_document(db, added.doc_id)
    assert not remove_document(db, added.doc_id)
    assert [d.doc_id for d in list_documents(db)] == [1]
    assert _found(db, paste) == []
    assert _found(db, _paragraph(text))  # the other document is still registered


def test_two_documents_pasted_give_two_findings(tmp_path: Path, cabinet: tuple[Path, str]) -> None:
    db, text = cabinet
    other = tmp_path / "brief.txt"
    other.write_text(_prose(8, 600), encoding="utf-8")
    add_documents(db, [other], label="Ministerial brief")
    email = _paragraph(text) + "\n\n" + _paragraph(other.read_text(encoding="utf-8"), 50)
    found = sorted(f["document"] for f in _found(db, email))
    assert found == ["Cabinet submission 2024/17", "Ministerial brief"]


def test_unreadable_or_short_documents_are_refused(tmp_path: Path) -> None:
    db = tmp_path / "fp.db"
    short = tmp_path / "short.txt"
    short.write_text("too short", encoding="utf-8")
    binary = tmp_path / "blob.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    good = tmp_path / "good.txt"
    good.write_text(_prose(3, 200), encoding="utf-8")
    with pytest.raises(ValueError, match="short"):
        add_documents(db, [good, short])
    with pytest.raises(ValueError, match=r"blob\.bin"):
        add_documents(db, [good, binary])
    assert list_documents(db) == []  # all or nothing


def test_through_the_analyzer_engine(cabinet: tuple[Path, str]) -> None:
    db, text = cabinet
    detector = Detector(build_analyzer(DetectorConfig(fingerprint_db=db)))
    findings = detector.analyze([Segment("attachment[1]:notes.txt", _edit(_paragraph(text), 5, 3))])
    (finding,) = [f for f in findings if f.entity_type == "DOCUMENT_FINGERPRINT"]
    assert finding.attributes["document"] == "Cabinet submission 2024/17"
    assert finding.location == "attachment[1]:notes.txt"
