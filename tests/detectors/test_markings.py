"""Protective markings: parsing, free-text detection, effective marking and mismatches."""

from __future__ import annotations

import email
import email.policy
import os
from pathlib import Path

import pytest

from detectors import registry
from detectors.config import DetectorConfig
from detectors.engine import Detector, build_analyzer
from detectors.markings import (
    Level,
    Marking,
    effective_marking,
    find_markings,
    parse_header,
    parse_subject,
    postprocess,
)
from gateway.model import Finding, Segment

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("DLP_SHARED_DIR", REPO.parent / "shared"))


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(build_analyzer(DetectorConfig()))


def markings_in(detector: Detector, location: str, text: str) -> list[Finding]:
    return [f for f in detector.analyze([Segment(location, text)]) if f.entity_type == "PROTECTIVE_MARKING"]


# --- levels and parsing ----------------------------------------------------------------------


def test_levels_are_ordered() -> None:
    assert Level.PROTECTED > Level.OFFICIAL_SENSITIVE > Level.OFFICIAL > Level.UNOFFICIAL
    assert Level.TOP_SECRET > Level.SECRET > Level.PROTECTED
    assert Level.from_label("OFFICIAL:Sensitive") is Level.OFFICIAL_SENSITIVE
    assert Level.from_label("TOP-SECRET") is Level.TOP_SECRET
    assert Level.TOP_SECRET.label == "TOP SECRET"


@pytest.mark.parametrize(
    ("header", "level", "caveats", "imms", "version"),
    [
        (  # 2018.4, folded over lines (reference B5.3)
            "VER=2018.4, NS=gov.au,\r\n SEC=OFFICIAL:Sensitive,\r\n ACCESS=Legal-Privilege,\r\n"
            " ORIGIN=neville.jones@entity.gov.au",
            Level.OFFICIAL_SENSITIVE,
            (),
            ("Legal-Privilege",),
            "2018.4",
        ),
        (
            "VER=2025.1, NS=gov.au, SEC=TOP-SECRET, CAVEAT=C:LOBSTER, CAVEAT=FG:USA caveat,\n"
            " CAVEAT=RI:AGAO, CAVEAT=SH:EXCLUSIVE-FOR person, CAVEAT=RI:REL AFG, EXPIRES=2020-10-01,\n"
            " DOWNTO=OFFICIAL, ACCESS=Legal-Privilege, NOTE=the comments, ORIGIN=a@b.com",
            Level.TOP_SECRET,
            ("C:LOBSTER", "FG:USA caveat", "AGAO", "EXCLUSIVE-FOR person", "REL AFG"),
            ("Legal-Privilege",),
            "2025.1",
        ),
        (
            "VER=2018.1, NS=gov.au, SEC=PROTECTED, CAVEAT=SH:CABINET",
            Level.PROTECTED,
            ("CABINET",),
            (),
            "2018.1",
        ),
        ("VER=2024.1, NS=gov.au, SEC=OFFICIAL: Sensitive", Level.OFFICIAL_SENSITIVE, (), (), "2024.1"),
        ("X-Protective-Marking: VER=2018.3, NS=gov.au, SEC=TOP SECRET", Level.TOP_SECRET, (), (), "2018.3"),
        # 2012 DLM era: legacy values mapped to the current scheme
        (
            "VER=2012.3, NS=gov.au, SEC=UNCLASSIFIED, ORIGIN=user@agency.gov.au",
            Level.OFFICIAL,
            (),
            (),
            "2012.3",
        ),
        (
            "VER=2012.3, NS=gov.au, SEC=UNCLASSIFIED, DLM=Sensitive:Personal",
            Level.OFFICIAL_SENSITIVE,
            (),
            ("Personal-Privacy",),
            "2012.3",
        ),
        ("VER=2012.3, NS=gov.au, DLM=Sensitive:Cabinet", Level.PROTECTED, ("CABINET",), (), "2012.3"),
    ],
)
def test_parse_header_versions(
    header: str, level: Level, caveats: tuple[str, ...], imms: tuple[str, ...], version: str
) -> None:
    marking = parse_header(header)
    assert marking is not None
    assert (marking.level, marking.caveats, marking.imms, marking.version) == (level, caveats, imms, version)
    assert marking.source == "header"


def test_parse_header_keeps_expiry_and_escapes() -> None:
    marking = parse_header(
        r"VER=2018.4, NS=gov.au, SEC=PROTECTED, EXPIRES=2019-07-01, DOWNTO=OFFICIAL, NOTE=a\, b"
    )
    assert marking is not None
    assert marking.expires == "2019-07-01" and marking.downto is Level.OFFICIAL
    assert marking.attributes()["downto"] == "OFFICIAL"


def test_parse_header_rejects_unknown_level() -> None:
    assert parse_header("VER=2018.4, NS=gov.au, SEC=BANANA") is None
    assert parse_header("nothing here") is None


@pytest.mark.parametrize(
    ("subject", "level", "caveats"),
    [
        (
            "This is an example subject line [SEC=OFFICIAL:Sensitive, ACCESS=Legal-Privilege]",
            "OFFICIAL:Sensitive",
            "",
        ),
        ("… [SEC=OFFICIAL:Sensitive, CAVEAT=SH:NATIONAL-CABINET]", "OFFICIAL:Sensitive", "NATIONAL-CABINET"),
        (
            "… [SEC=SECRET, CAVEAT=SH:ACCOUNTABLE-MATERIAL, CAVEAT=RI:AUSTEO]",
            "SECRET",
            "ACCOUNTABLE-MATERIAL,AUSTEO",
        ),
        (
            "The subject [SEC=TOP-SECRET, CAVEAT=SH:CABINET, CAVEAT=RI:REL AFG]",
            "TOP SECRET",
            "CABINET,REL AFG",
        ),
        ("[SEC=SECRET, CAVEAT=ACCOUNTABLE-MATERIAL, CAVEAT=AUSTEO]", "SECRET", "ACCOUNTABLE-MATERIAL,AUSTEO"),
        ("Minutes [DLM=For-Official-Use-Only]", "OFFICIAL:Sensitive", ""),
        ("RE: x [SEC=OFFICIAL] [SEC=PROTECTED]", "PROTECTED", ""),
    ],
)
def test_parse_subject(subject: str, level: str, caveats: str) -> None:
    marking = parse_subject(subject)
    assert marking is not None
    assert marking.attributes()["level"] == level
    assert marking.attributes().get("caveats", "") == caveats
    assert marking.source == "subject"


def test_parse_subject_without_marking() -> None:
    assert parse_subject("Lunch [on Friday]") is None


# --- free text -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "level", "caveats"),
    [
        ("OFFICIAL: Sensitive\n\nPlease find the brief.", "OFFICIAL:Sensitive", ""),
        ("Brief\nPROTECTED//CABINET\nBody", "PROTECTED", "CABINET"),
        ("  SECRET//AUSTEO  \nText", "SECRET", "AUSTEO"),
        ("TOP SECRET\nThe plan", "TOP SECRET", ""),
        ("Security Classification: PROTECTED\nText", "PROTECTED", ""),
        ("PROTECTED\nCABINET\nText of the submission", "PROTECTED", "CABINET"),
        ("The report is marked OFFICIAL: Sensitive and goes to the committee.", "OFFICIAL:Sensitive", ""),
        ("See the attached SECRET//REL AUS/NZL paper.", "SECRET", "REL AUS/NZL"),
        ("OFFICIAL: Sensitive – NSW Cabinet\nText", "OFFICIAL:Sensitive", "NSW-CABINET"),
    ],
)
def test_banners_in_text(detector: Detector, text: str, level: str, caveats: str) -> None:
    found = markings_in(detector, "body", text)
    assert [f.attributes["level"] for f in found] == [level]
    assert found[0].attributes.get("caveats", "") == caveats
    assert found[0].score >= 0.8


@pytest.mark.parametrize(
    ("text", "level", "legacy"),
    [
        ("This document is For Official Use Only.", "OFFICIAL:Sensitive", "For Official Use Only"),
        ("Sensitive: Personal\nStaff file", "OFFICIAL:Sensitive", "Sensitive: Personal"),
        ("Marked Sensitive: Legal by the AGS.", "OFFICIAL:Sensitive", "Sensitive: Legal"),
        ("Sensitive: Cabinet\nSubmission", "PROTECTED", "Sensitive: Cabinet"),
        ("STAFF-IN-CONFIDENCE\nReview", "OFFICIAL:Sensitive", "STAFF-IN-CONFIDENCE"),
        ("HIGHLY PROTECTED\nold file", "SECRET", "HIGHLY PROTECTED"),
        ("UNCLASSIFIED\nold file", "OFFICIAL", "UNCLASSIFIED"),
    ],
)
def test_legacy_markings_are_mapped(detector: Detector, text: str, level: str, legacy: str) -> None:
    found = markings_in(detector, "attachment[1]:old.doc", text)
    assert [(f.attributes["level"], f.attributes["legacy"]) for f in found] == [(level, legacy)]


def test_legacy_imm_from_dlm() -> None:
    [(_, _, marking, _)] = find_markings("Sensitive: Personal\n")
    assert marking.imms == ("Personal-Privacy",)


@pytest.mark.parametrize(
    "text",
    [
        "The top secret recipe is protected by a password.",
        "It's no secret that the files are protected.",
        "Our SECRET santa draw is on Friday.",
        "The file is PROTECTED by a password so nobody can open it.",
        "THE TOP SECRET RECIPE THEY DO NOT WANT YOU TO SEE",
        "This is an official announcement from the Secretary.",
        "A protected disclosure under the PID Act was made.",
        "Staff-in-Confidence",  # mixed case: a phrase, not a marking
        "Please use the Official channel; it is sensitive.",
    ],
)
def test_prose_does_not_fire(detector: Detector, text: str) -> None:
    assert markings_in(detector, "body", text) == []


def test_quoted_marking_is_found_and_flagged(detector: Detector) -> None:
    found = markings_in(detector, "body", "Thanks!\n\n> PROTECTED//CABINET\n> old text")
    assert [f.attributes.get("quoted") for f in found] == ["true"]


def test_header_segment_through_engine(detector: Detector) -> None:
    text = "VER=2018.4, NS=gov.au, SEC=PROTECTED, CAVEAT=SH:CABINET, ACCESS=Legislative-Secrecy"
    [finding] = markings_in(detector, "header:X-Protective-Marking", text)
    assert finding.score == 1.0
    assert finding.attributes["level"] == "PROTECTED"
    assert finding.attributes["caveats"] == "CABINET"
    assert finding.attributes["imm"] == "Legislative-Secrecy"
    assert "PROTECTED" not in finding.excerpt  # masked like any other excerpt


def test_long_hostile_text_is_fast() -> None:
    import time

    hostile = (
        "SEC=PROTECTED, "
        + "CAVEAT="
        + "A" * 50
        + ", " * 5000
        + "PROTECTED//" * 5000
        + "\n"
        + "OFFICIAL:" * 20000
    )
    start = time.perf_counter()
    find_markings(hostile)
    assert time.perf_counter() - start < 2.0


# --- whole message ---------------------------------------------------------------------------


def _marking(location: str, level: str, caveats: str = "") -> Finding:
    attributes = {"level": level, **({"caveats": caveats} if caveats else {})}
    return Finding("PROTECTIVE_MARKING", 1.0, location, "•••", attributes=attributes)


def test_effective_marking_is_highest_anywhere() -> None:
    findings = [
        _marking("header:X-Protective-Marking", "OFFICIAL"),
        _marking("attachment[1]:a.pdf", "PROTECTED", "CABINET"),
        _marking("body", "PROTECTED", "AUSTEO"),
        Finding("EMAIL_ADDRESS", 1.0, "body", "•••@x.au"),
    ]
    marking = effective_marking(findings)
    assert isinstance(marking, Marking)
    assert marking.level is Level.PROTECTED
    assert marking.caveats == ("CABINET", "AUSTEO")
    assert effective_marking([]) is None


def test_postprocess_adds_source_and_mismatch() -> None:
    findings = [
        _marking("header:X-Protective-Marking", "OFFICIAL"),
        _marking("subject", "OFFICIAL"),
        _marking("attachment[2]:brief.docx", "SECRET"),
        _marking("body", "PROTECTED"),
    ]
    out = postprocess(findings)
    assert [f.attributes["source"] for f in out if f.entity_type == "PROTECTIVE_MARKING"] == [
        "header",
        "subject",
        "attachment",
        "body",
    ]
    [mismatch] = [f for f in out if f.entity_type == "MARKING_MISMATCH"]
    assert mismatch.location == "attachment[2]:brief.docx"
    assert mismatch.attributes["declared"] == "OFFICIAL"
    assert mismatch.attributes["found"] == "SECRET"
    assert mismatch.attributes["location"] == "attachment[2]:brief.docx"


def test_header_takes_precedence_over_subject() -> None:
    out = postprocess([_marking("header:X-Protective-Marking", "OFFICIAL"), _marking("subject", "PROTECTED")])
    [mismatch] = [f for f in out if f.entity_type == "MARKING_MISMATCH"]
    assert (mismatch.attributes["declared"], mismatch.attributes["found"]) == ("OFFICIAL", "PROTECTED")


@pytest.mark.parametrize(
    "findings",
    [
        [
            _marking("subject", "PROTECTED"),
            _marking("body", "PROTECTED"),
            _marking("attachment[1]:a", "OFFICIAL"),
        ],
        [_marking("body", "SECRET")],  # nothing declared: no claim to contradict
        [],
    ],
)
def test_no_mismatch(findings: list[Finding]) -> None:
    assert not [f for f in postprocess(findings) if f.entity_type == "MARKING_MISMATCH"]


def test_registry_postprocess_through_engine(detector: Detector) -> None:
    segments = [
        Segment("header:X-Protective-Marking", "VER=2018.4, NS=gov.au, SEC=OFFICIAL"),
        Segment("subject", "Budget [SEC=OFFICIAL]"),
        Segment("body", "Hi,\nsee attached.\n\n> Subject: Budget [SEC=PROTECTED]\n"),
        Segment("attachment[1]:brief.docx", "OFFICIAL: Sensitive\nBrief\nOFFICIAL: Sensitive"),
    ]
    findings = registry.postprocess(detector.analyze(segments))
    [mismatch] = [f for f in findings if f.entity_type == "MARKING_MISMATCH"]
    assert mismatch.attributes["found"] == "PROTECTED"
    assert mismatch.location == "body"
    top = effective_marking(findings)
    assert top is not None and top.level is Level.PROTECTED


# --- corpus: real mail must not look marked --------------------------------------------------


def _corpus_texts(folder: str, limit: int) -> list[str]:
    root = SHARED / "corpora" / "benign_baseline" / folder
    if not root.is_dir():
        pytest.skip(f"shared corpus not found at {root} (set DLP_SHARED_DIR)")
    texts = []
    for path in sorted(root.glob("*.txt"))[:limit]:
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        body = msg.get_body(("plain", "html"))
        try:
            content = body.get_content() if body is not None else ""
        except (LookupError, ValueError):
            content = ""
        texts.append(f"{msg.get('subject', '')}\n{content}")
    return texts


@pytest.mark.parametrize("folder", ["spamassassin_easy_ham", "spamassassin_hard_ham", "enron_via_palimpzest"])
def test_benign_mail_has_no_markings(folder: str) -> None:
    texts = _corpus_texts(folder, 250)
    hits = [t[s:e] for t in texts for s, e, _, _ in find_markings(t)]
    assert hits == []
