"""`dlp-gateway policy test FILE DIR [--against OLD]` over a folder of real .eml files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.policy.helpers import write_policy
from tests.support import REPO, message

HOLD_TFN = """
rules:
  - name: tfn-external
    when: {all: [{recipient: external}, {findings: {entities: [AU_TFN]}}]}
    action: hold
"""
WARN_TFN = HOLD_TFN.replace("hold", "warn")


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--config", str(config), "policy", "test", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )


def make_mail(folder: Path) -> None:
    folder.mkdir()
    (folder / "clean.eml").write_bytes(message("lunch", "Noon by the river?"))
    (folder / "tfn.eml").write_bytes(message("refund", "Client tax file number 123 456 782 please."))
    (folder / "internal.eml").write_bytes(
        message("refund", "Client tax file number 123 456 782 please.", to="carol@agency.gov.au")
    )


def test_table_and_totals(tmp_path: Path) -> None:
    make_mail(tmp_path / "mail")
    config = tmp_path / "settings.yaml"
    config.write_text("internal_domains: [agency.gov.au]\n")
    result = run(config, str(write_policy(tmp_path, HOLD_TFN)), str(tmp_path / "mail"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("tfn.eml") and " hold " in line and "tfn-external" in line for line in lines)
    assert any(line.startswith("internal.eml") and " pass " in line for line in lines)
    assert "totals (3 messages): hold=1, pass=2" in result.stdout
    assert "123 456 782" not in result.stdout


def test_against_lists_only_changed_decisions(tmp_path: Path) -> None:
    make_mail(tmp_path / "mail")
    config = tmp_path / "settings.yaml"
    config.write_text("internal_domains: [agency.gov.au]\n")
    new = write_policy(tmp_path, WARN_TFN, "new.yaml")
    old = write_policy(tmp_path, HOLD_TFN, "old.yaml")
    result = run(config, str(new), str(tmp_path / "mail"), "--against", str(old))
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.endswith("tfn-external")]
    assert len(rows) == 1 and rows[0].split()[:3] == ["tfn.eml", "hold", "warn"]
    assert "clean.eml" not in result.stdout and "internal.eml" not in result.stdout
    assert "changed: 1 (hold→warn=1)" in result.stdout
