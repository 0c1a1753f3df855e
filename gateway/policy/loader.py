"""Reading policy YAML with the line and column of every key, for precise errors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class Mark:
    """Where something is in a policy file (1-based)."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class PolicyError(ValueError):
    """One or more problems in a policy file, each with its place."""

    def __init__(self, problems: list[tuple[Mark, str]]):
        self.problems = problems
        super().__init__("\n".join(f"{mark}: {text}" for mark, text in problems))


class MarkedDict(dict[str, Any]):
    """A YAML mapping that remembers where it and each of its keys stand."""

    mark: Mark
    key_marks: dict[str, Mark]

    def mark_of(self, key: str) -> Mark:
        return self.key_marks.get(key, self.mark)


class MarkedList(list[Any]):
    """A YAML sequence that remembers where it stands."""

    mark: Mark


def load_marked(path: Path) -> Any:
    """Parse YAML into MarkedDict/MarkedList/scalars; YAML errors become PolicyError."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError([(Mark(name, 1, 1), f"cannot read: {exc.strerror}")]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = Mark(name, mark.line + 1, mark.column + 1) if mark else Mark(name, 1, 1)
        raise PolicyError([(where, f"invalid YAML: {exc.problem}")]) from None
    if node is None:
        return MarkedDict()
    return _convert(node, name)


def _mark(node: yaml.Node, name: str) -> Mark:
    return Mark(name, node.start_mark.line + 1, node.start_mark.column + 1)


def _convert(node: yaml.Node, name: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        result = MarkedDict()
        result.mark = _mark(node, name)
        result.key_marks = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            result.key_marks[key] = _mark(key_node, name)
            result[key] = _convert(value_node, name)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = MarkedList(_convert(item, name) for item in node.value)
        items.mark = _mark(node, name)
        return items
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()
