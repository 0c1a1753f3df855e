"""Domain lists, lookalike detection and the sender directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.directory import DirectoryError, load_directory
from gateway.domains import DomainLists, LookalikeChecker, domain_of, load_domain_list

CHECKER = LookalikeChecker(("integrity.tas.gov.au", "agency.gov.au"), internal=("integrity.tas.gov.au",))


@pytest.mark.parametrize(
    ("domain", "imitates"),
    [
        ("integrity-tas.gov.au", "integrity.tas.gov.au"),
        ("lntegrity.tas.gov.au", "integrity.tas.gov.au"),
        ("integrlty.tas.gov.au", "integrity.tas.gov.au"),
        ("mail.lntegrity.tas.gov.au", "integrity.tas.gov.au"),
        (domain_of("x@xn--ntegrity-shh.tas.gov.au"), "integrity.tas.gov.au"),  # Cyrillic і
        ("agencу.gov.au", "agency.gov.au"),  # Cyrillic у
        ("agency-gov.au", "agency.gov.au"),
        ("agency.gov.au.example.com", "agency.gov.au"),
        # not lookalikes: ours, our subdomains, and different names
        ("integrity.tas.gov.au", None),
        ("mail.integrity.tas.gov.au", None),
        ("agency.gov.au", None),
        ("integrity.vic.gov.au", None),
        ("agenda.gov.au", None),  # two edits on a six-letter name is a different word
        ("example.com", None),
    ],
)
def test_lookalikes(domain: str, imitates: str | None) -> None:
    assert CHECKER.lookalike_of(domain) == imitates


def test_shipped_lists_load_and_match_subdomains() -> None:
    lists = DomainLists.load()
    assert lists.is_webmail("gmail.com") and lists.is_webmail("bigpond.com")
    assert not lists.is_webmail("agency.gov.au") and not lists.is_webmail("notgmail.com")
    assert lists.is_posting("post.wordpress.com") and lists.is_posting("blog.tumblr.com")


def test_domain_list_ignores_comments_and_case(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_text("# comment\nMail.Example.com.  # trailing\n\n")
    assert load_domain_list(path) == frozenset({"mail.example.com"})


def test_directory_from_yaml_and_csv(tmp_path: Path) -> None:
    yaml_file = tmp_path / "d.yaml"
    yaml_file.write_text(
        "groups:\n  hr: [Alice@Agency.gov.au, '*@hr.agency.gov.au']\n  exec: ceo@agency.gov.au\n"
    )
    csv_file = tmp_path / "d.csv"
    csv_file.write_text("address,groups\nalice@agency.gov.au,hr;payroll\nceo@agency.gov.au,exec\n")
    for path in (yaml_file, csv_file):
        directory = load_directory(path)
        assert "hr" in directory.groups_of("ALICE@agency.gov.au")
        assert directory.groups_of("ceo@agency.gov.au") == {"exec"}
        assert directory.groups_of("nobody@agency.gov.au") == set()
    assert load_directory(yaml_file).groups_of("pat@hr.agency.gov.au") == {"hr"}


def test_bad_directory_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("email,team\nx@y,z\n")
    with pytest.raises(DirectoryError, match=r"d\.csv"):
        load_directory(path)
