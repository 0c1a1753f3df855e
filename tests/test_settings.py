"""The settings file: defaults, every key checked, errors that name the key."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any, get_type_hints

import pytest
import yaml

from gateway.settings import Settings, SettingsError, load_settings
from tests.support import REPO


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    return path


def test_defaults_follow_filter_readme() -> None:
    settings = load_settings(None)
    assert settings.smtp.listen == "127.0.0.1:10025"
    assert settings.next_hop.url == "smtp://127.0.0.1:10026"
    assert settings.console.listen == "127.0.0.1:8025"
    assert settings.store_url.startswith("sqlite:///var/")


def test_example_file_is_valid_and_equals_the_defaults() -> None:
    assert load_settings(REPO / "gateway.example.yaml") == Settings()


def test_values_are_read(tmp_path: Path) -> None:
    settings = load_settings(
        write(
            tmp_path,
            "smtp: {listen: '0.0.0.0:2525', allowed_networks: [10.0.0.0/8]}\ninternal_domains: [a.gov.au]\n",
        )
    )
    assert settings.smtp.listen == "0.0.0.0:2525"
    assert settings.smtp.allowed_networks == ("10.0.0.0/8",)
    assert settings.internal_domains == ("a.gov.au",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("smtp: {lisen: '127.0.0.1:25'}\n", "unknown key 'smtp.lisen'"),
        ("smtp: {listen: 'nowhere'}\n", "'smtp.listen' must be host:port"),
        ("smtp: {allowed_networks: ['10.0.0.300/8']}\n", "'smtp.allowed_networks'"),
        ("smtp: {max_sessions: many}\n", "'smtp.max_sessions' must be int"),
        ("smtp: {max_sessions: true}\n", "'smtp.max_sessions' must be int, not a boolean"),
        ("next_hop: {url: 'http://x:1'}\n", "'next_hop.url' must look like smtp://host:port"),
        ("scan: {fail_mode: ignore}\n", "'scan.fail_mode'"),
        ("scan: {workers: 0}\n", "'scan.workers' must be at least 1"),
        ("store_url: 'mysql://x'\n", "'store_url'"),
        ("smtp: {tls_cert: a.pem}\n", "must be set together"),
        ("smtp: [1, 2]\n", "'smtp' must be a mapping"),
        ("- just a list\n", "top level must be a mapping"),
        ("smtp: {listen: '127.0.0.1:25'\n", "not valid YAML"),
    ],
)
def test_bad_settings_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SettingsError) as error:
        load_settings(path)
    assert expected in str(error.value)
    assert str(path) in str(error.value)


def test_gateway_refuses_to_start_on_bad_settings(tmp_path: Path) -> None:
    path = write(tmp_path, "smtp: {max_sessions: -1}\n")
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--config", str(path), "run"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "'smtp.max_sessions' must be positive" in result.stderr


def _undocumented(cls: type, section: dict[str, Any], prefix: str = "") -> list[str]:
    hints = get_type_hints(cls)
    gaps: list[str] = []
    for f in dataclasses.fields(cls):
        if f.name not in section:
            gaps.append(prefix + f.name)
        elif dataclasses.is_dataclass(hints[f.name]):
            gaps += _undocumented(hints[f.name], section[f.name], f"{prefix}{f.name}.")
    return gaps


def test_every_setting_is_documented_in_the_example() -> None:
    example = yaml.safe_load((REPO / "gateway.example.yaml").read_text())
    assert _undocumented(Settings, example) == []
