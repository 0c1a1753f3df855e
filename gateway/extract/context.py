"""State of one extraction run, and the findings extraction itself raises.

A :class:`Context` is created per top-level part and handed down to every format
handler; nested content (archive members, embedded objects, attached messages)
goes back through :meth:`Context.recurse`, so depth, time and the text budget
are enforced in one place whatever the nesting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.extract.detect import TypeInfo
from gateway.extract.limits import ExtractLimits, GlobalLimitExceeded, LimitExceeded, TextBudget
from gateway.model import Extraction, Finding, Segment


def unscannable(location: str, reason: str) -> Finding:
    """A finding for a part the gateway could not read, saying why."""
    return Finding("UNSCANNABLE", 1.0, location, reason, attributes={"reason": reason})


def encrypted(location: str, reason: str, *, readable: bool = False) -> Finding:
    """A finding for encrypted or rights-protected content.

    ``readable`` is true when the content still opened without a password (for
    instance a PDF with only an owner password) and its text was scanned.
    """
    attributes = {"reason": reason, "scanned": "yes" if readable else "no"}
    return Finding("ENCRYPTED", 1.0, location, reason, attributes=attributes)


def type_mismatch(location: str, declared: str, detected: str) -> Finding:
    """A finding for a part whose name or declared type disagrees with its content."""
    return Finding(
        "FILE_TYPE_MISMATCH",
        1.0,
        location,
        f"{declared} is {detected}",
        attributes={"declared": declared, "detected": detected},
    )


class EncryptedContent(Exception):
    """Raised by a handler that found the part encrypted; ``reason`` says how."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Part:
    """One piece of content to extract, as the dispatcher hands it to a format handler."""

    data: bytes
    location: str
    filename: str
    declared_type: str
    charset: str | None
    info: TypeInfo


# (data, location, filename, declared_type, charset, context) -> None; set by the dispatcher.
Recurse = Callable[[bytes, str, str, str, "str | None", "Context"], None]


@dataclass
class RunState:
    """Counters shared by every nesting level of one run."""

    ocr_left: int


@dataclass
class Context:
    """Limits, budget, deadline and output of one extraction run."""

    limits: ExtractLimits
    budget: TextBudget
    deadline: float
    recurse_fn: Recurse
    state: RunState
    depth: int = 0
    out: Extraction = field(default_factory=Extraction)

    def take_ocr(self) -> None:
        """Account for one image sent to OCR; refuse past ``max_ocr_images``."""
        if self.state.ocr_left <= 0:
            raise LimitExceeded("max_ocr_images")
        self.state.ocr_left -= 1

    def check_time(self) -> None:
        """Stop the whole part once its time is up (called between pages, rows, members)."""
        if time.monotonic() > self.deadline:
            raise GlobalLimitExceeded("part_timeout")

    def remaining_time(self) -> float:
        return max(self.deadline - time.monotonic(), 0.0)

    def emit(self, location: str, text: str) -> None:
        """Add readable text, charged against the message's text budget."""
        if not text or not text.strip():
            return
        fitted = self.budget.take(text)
        if fitted:
            self.out.segments.append(Segment(location, fitted))
        if self.budget.exhausted:
            raise GlobalLimitExceeded("max_text_bytes")

    def finding(self, finding: Finding) -> None:
        self.out.findings.append(finding)

    def finding_unscannable(self, location: str, reason: str) -> None:
        self.finding(unscannable(location, reason))

    def finding_limit(self, location: str, limit: str) -> None:
        """Record that a limit cut this location short (``limit:<name>``)."""
        self.finding(unscannable(location, LimitExceeded(limit).reason))

    def recurse(
        self,
        data: bytes,
        location: str,
        *,
        filename: str = "",
        declared_type: str = "",
        charset: str | None = None,
    ) -> None:
        """Extract nested content one level deeper (archive member, embedded file, …)."""
        child = self.deeper(location)
        if child is not None:
            self.recurse_fn(data, location, filename, declared_type, charset, child)

    def deeper(self, location: str) -> Context | None:
        """A context one nesting level down, or None (and a finding) past ``max_depth``."""
        self.check_time()
        if self.depth + 1 > self.limits.max_depth:
            self.finding_limit(location, "max_depth")
            return None
        return Context(
            limits=self.limits,
            budget=self.budget,
            deadline=self.deadline,
            recurse_fn=self.recurse_fn,
            state=self.state,
            depth=self.depth + 1,
            out=self.out,
        )
