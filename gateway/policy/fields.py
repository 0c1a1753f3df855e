"""Reading the fields of one YAML mapping in a policy, collecting every problem with its place.

Each condition parser reads its mapping through ``Fields`` so that unknown keys,
wrong types and out-of-range values are all reported the same way, with the
line and column of the offending key.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.policy.loader import Mark, MarkedDict, PolicyError

SIZE_UNITS = {"": 1, "B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}
SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]?B?)\s*$", re.IGNORECASE)


class Fields:
    """A mapping being read: typed getters that record problems instead of raising."""

    def __init__(self, raw: Any, mark: Mark, what: str, allowed: set[str]):
        self.what = what
        self.problems: list[tuple[Mark, str]] = []
        if not isinstance(raw, MarkedDict):
            self.raw = MarkedDict()
            self.raw.mark, self.raw.key_marks = mark, {}
            self.problems.append(
                (mark, f"'{what}' must be a mapping with keys: {', '.join(sorted(allowed))}")
            )
            return
        self.raw = raw
        for key in raw:
            if key not in allowed:
                known = ", ".join(sorted(allowed))
                self.problems.append((raw.mark_of(key), f"unknown key '{key}' in {what} (known: {known})"))

    @property
    def ok(self) -> bool:
        return not self.problems

    def has(self, key: str) -> bool:
        return key in self.raw

    def mark(self, key: str) -> Mark:
        return self.raw.mark_of(key)

    def problem(self, key: str, text: str) -> None:
        self.problems.append((self.raw.mark_of(key), text))

    def number(self, key: str, default: float, low: float, high: float | None = None) -> float:
        value = self.raw.get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or value < low
            or (high is not None and value > high)
        ):
            bounds = f"from {low:g} to {high:g}" if high is not None else f"≥ {low:g}"
            self.problem(key, f"'{key}' in {self.what} must be a number {bounds}")
            return default
        return float(value)

    def whole(self, key: str, default: int, low: int = 0) -> int:
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            self.problem(key, f"'{key}' in {self.what} must be a whole number ≥ {low}")
            return default
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            self.problem(key, f"'{key}' in {self.what} must be true or false")
            return default
        return value

    def text(self, key: str, default: str = "", required: bool = False) -> str:
        if required and key not in self.raw:
            self.problems.append((self.raw.mark, f"{self.what} needs '{key}'"))
            return default
        value = self.raw.get(key, default)
        if not isinstance(value, str) or (required and not value):
            self.problem(key, f"'{key}' in {self.what} must be text")
            return default
        return value

    def strings(self, key: str, required: bool = False) -> tuple[str, ...]:
        """A string or a list of strings; lower-case is the caller's business."""
        if key not in self.raw:
            if required:
                self.problems.append((self.raw.mark, f"{self.what} needs '{key}'"))
            return ()
        value = self.raw[key]
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            self.problem(key, f"'{key}' in {self.what} must be a name or a list of names")
            return ()
        return tuple(value)

    def size(self, key: str) -> int | None:
        """Bytes, written as a number or with a unit: ``512 KB``, ``10MB``, ``1.5 GB``."""
        if key not in self.raw:
            return None
        parsed = parse_size(self.raw[key])
        if parsed is None:
            self.problem(key, f"'{key}' in {self.what} must be a size such as 500000, '512 KB' or '10 MB'")
        return parsed

    def done(self) -> None:
        """Raise every problem recorded."""
        if self.problems:
            raise PolicyError(self.problems)


def parse_size(value: Any) -> int | None:
    """Bytes from an int or a text with a unit; None if it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if not isinstance(value, str):
        return None
    match = SIZE_RE.match(value)
    if not match:
        return None
    unit = match.group(2).upper()
    unit = unit if unit.endswith("B") or not unit else unit + "B"
    return int(float(match.group(1)) * SIZE_UNITS[unit])
