"""Sender groups from a directory file, so rules can treat (say) HR or executives differently.

YAML::

    groups:
      hr: [alice@agency.gov.au, "*@hr.agency.gov.au"]
      executives: [ceo@agency.gov.au]

CSV (a header row, groups separated by ``;``)::

    address,groups
    alice@agency.gov.au,hr;payroll
    *@hr.agency.gov.au,hr

Members are addresses or ``fnmatch`` patterns, compared case-insensitively.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

import yaml


class DirectoryError(ValueError):
    """A directory file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Directory:
    """Group name → member addresses or patterns."""

    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = ""  # the file it came from; empty when no directory is configured

    @property
    def names(self) -> frozenset[str] | None:
        """Group names a policy may use; None when there is no directory (nothing to check against)."""
        return frozenset(self.groups) if self.source else None

    def groups_of(self, address: str) -> frozenset[str]:
        """Every group whose members include ``address``."""
        address = address.strip().lower()
        return frozenset(
            name for name, members in self.groups.items() if any(fnmatchcase(address, m) for m in members)
        )


def load_directory(path: Path) -> Directory:
    """Read a YAML (``.yaml``/``.yml``) or CSV directory file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DirectoryError(f"{path}: cannot read: {exc.strerror}") from None
    if path.suffix.lower() == ".csv":
        return _from_csv(text, path)
    return _from_yaml(text, path)


def _from_yaml(text: str, path: Path) -> Directory:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DirectoryError(f"{path}: not valid YAML: {exc}") from None
    groups = raw.get("groups") if isinstance(raw, dict) else None
    if not isinstance(groups, dict):
        raise DirectoryError(f"{path}: expected a mapping 'groups: {{name: [addresses]}}'")
    result: dict[str, tuple[str, ...]] = {}
    for name, members in groups.items():
        if isinstance(members, str):
            members = [members]
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise DirectoryError(f"{path}: group '{name}' must be a list of addresses")
        result[str(name)] = tuple(m.strip().lower() for m in members)
    return Directory(result, str(path))


def _from_csv(text: str, path: Path) -> Directory:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"address", "groups"} <= set(reader.fieldnames):
        raise DirectoryError(f"{path}: the header row must name 'address' and 'groups'")
    members: dict[str, list[str]] = {}
    for row in reader:
        address = (row.get("address") or "").strip().lower()
        if not address:
            continue
        for name in (row.get("groups") or "").split(";"):
            if name.strip():
                members.setdefault(name.strip(), []).append(address)
    return Directory({name: tuple(addresses) for name, addresses in members.items()}, str(path))
