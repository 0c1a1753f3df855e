"""`dlp-gateway policy check`: one precise error, with file:line:column, for each kind of mistake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from detectors.registry import all_entities
from gateway.policy import PolicyError, load_policy
from tests.policy.helpers import write_policy
from tests.support import REPO

GOOD_RULE = """
rules:
  - name: ok
    when: {findings: {entities: [AU_TFN]}}
    action: hold
"""

BROKEN = {
    "bad-yaml": ("rules:\n  - name: x\n    when: {findings: [AU_TFN\n    action: hold\n", 4, "invalid YAML"),
    "unknown-top-key": ("ruels: []\nrules: []\n", 1, "unknown key 'ruels'"),
    "unknown-rule-key": (GOOD_RULE + "    acton: hold\n", 5, "unknown key 'acton' in rule"),
    "unknown-condition": (
        "rules:\n  - name: x\n    when: {findng: {entities: [AU_TFN]}}\n    action: hold\n",
        3,
        "unknown condition 'findng'",
    ),
    "unknown-entity": (
        "rules:\n  - name: x\n    when:\n      findings: {entities: [AU_TFM]}\n    action: hold\n",
        4,
        "unknown entity type 'AU_TFM'",
    ),
    "bad-level": (
        "rules:\n  - name: x\n    when:\n      marking: {at_least: RESTRICTED}\n    action: hold\n",
        4,
        "unknown marking level 'RESTRICTED'",
    ),
    "wrong-type-min-count": (
        "rules:\n  - name: x\n    when:\n      findings:\n        entities: [AU_TFN]\n"
        "        min_count: lots\n    action: hold\n",
        6,
        "'min_count' in findings must be a whole number",
    ),
    "wrong-type-stop": (GOOD_RULE + "    stop: sometimes\n", 5, "'stop' in rule 'ok' must be true or false"),
    "bad-action": (
        "rules:\n  - name: x\n    when: {recipient: external}\n    action: quarantine\n",
        4,
        "'action' must be one of",
    ),
    "bad-regex": (
        "rules:\n  - name: x\n    when:\n      subject: {matches: '(unclosed'}\n    action: hold\n",
        4,
        "invalid regular expression",
    ),
    "bad-recipient-kind": (
        "rules:\n  - name: x\n    when:\n      recipient: outside\n    action: hold\n",
        4,
        "'recipient' must be one or more of",
    ),
    "bad-size": (
        "rules:\n  - name: x\n    when:\n      size: {min: huge}\n    action: hold\n",
        4,
        "'min' in size must be a size",
    ),
    "bad-redact-operator": (
        "rules:\n  - name: x\n    when: {findings: {entities: [AU_TFN]}}\n    action: redact\n"
        "    redact: {operator: shred}\n",
        5,
        "'operator' must be one of mask, replace, hash",
    ),
    "bad-copy-address": (GOOD_RULE + "    copy_to: compliance\n", 5, "is not an e-mail address"),
    "duplicate-name": (
        GOOD_RULE + "  - name: ok\n    when: {recipient: external}\n    action: warn\n",
        5,
        "duplicate rule name 'ok'",
    ),
}


def check(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *extra, "policy", "check", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_each_mistake_gives_one_error_with_its_line(tmp_path: Path, case: str) -> None:
    text, line, problem = BROKEN[case]
    path = write_policy(tmp_path, text, f"{case}.yaml")
    with pytest.raises(PolicyError) as raised:
        load_policy(path, all_entities())
    assert len(raised.value.problems) == 1, raised.value.problems
    mark, message = raised.value.problems[0]
    assert (mark.file, mark.line) == (str(path), line)
    assert problem in message


@pytest.mark.parametrize("case", ["bad-yaml", "unknown-entity", "bad-level"])
def test_policy_check_exits_1_naming_file_and_line(tmp_path: Path, case: str) -> None:
    text, line, problem = BROKEN[case]
    path = write_policy(tmp_path, text, f"{case}.yaml")
    result = check(path)
    assert result.returncode == 1
    assert f"{path}:{line}:" in result.stderr and problem in result.stderr


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    text = (
        "rules:\n  - name: a\n    when: {findings: {entities: [NOPE]}}\n    action: hold\n"
        "  - name: b\n    when: {marking: {at_least: HUSH}}\n    action: maybe\n"
    )
    with pytest.raises(PolicyError) as raised:
        load_policy(write_policy(tmp_path, text), all_entities())
    assert [m.line for m, _ in raised.value.problems] == [3, 6, 7]


def test_sender_groups_are_checked_against_the_directory(tmp_path: Path) -> None:
    directory = tmp_path / "directory.yaml"
    directory.write_text("groups:\n  hr: [alice@agency.gov.au]\n")
    settings = tmp_path / "settings.yaml"
    settings.write_text(f"directory: {directory}\n")
    good = write_policy(
        tmp_path, "rules:\n  - name: a\n    when: {sender: {group: hr}}\n    action: warn\n", "g.yaml"
    )
    bad = write_policy(
        tmp_path, "rules:\n  - name: a\n    when: {sender: {group: hrr}}\n    action: warn\n", "b.yaml"
    )
    assert check(good, "--config", str(settings)).returncode == 0
    result = check(bad, "--config", str(settings))
    assert (
        result.returncode == 1
        and f"{bad}:3:" in result.stderr
        and "unknown sender group 'hrr'" in result.stderr
    )


@pytest.mark.parametrize(
    "name", ["default.yaml", "examples/strict-health.yaml", "examples/monitor-rollout.yaml"]
)
def test_shipped_policies_are_valid(name: str) -> None:
    result = check(REPO / "policies" / name)
    assert result.returncode == 0, result.stderr
