"""Attachment extraction: bytes in, text segments (with locations) out.

:class:`Extractor` is what the pipeline holds (one per worker process): it owns
the limits and a bounded cache of results by content hash.  ``extract_part`` is
the one-call convenience used by code without an ``Extractor``.

A part that cannot be read is never silently skipped: it becomes an
``UNSCANNABLE`` (or ``ENCRYPTED``) finding for the policy to judge; a name that
disagrees with the content is a ``FILE_TYPE_MISMATCH`` finding.  Each format
family lives in its own module (``pdf``, ``ooxml``, ``spreadsheet``, ``odf``,
``ole``, ``rtf``, ``archive``, ``mail``, ``ocr``, ``crypto``, ``text``);
``dispatch`` routes between them and ``isolate`` contains crashes and hangs.

Locations: the caller's location for the part (``attachment[2]:export.zip``),
``/<member>`` for each level of nesting and ``#<section>`` for a sheet, page,
slide or document part: ``attachment[2]:export.zip/clients.xlsx#Sheet2``.
"""

from __future__ import annotations

import functools
import time
from typing import Literal

from gateway.extract.cache import ExtractionCache
from gateway.extract.context import Context, Part, RunState, encrypted, type_mismatch, unscannable
from gateway.extract.dispatch import LOW_RISK_FAMILIES, describe, extract_node, run_handler
from gateway.extract.isolate import can_fork, deadline_alarm, run_forked
from gateway.extract.limits import ExtractLimits, TextBudget
from gateway.extract.text import decode_text, html_to_text
from gateway.model import Extraction, Segment

__all__ = [
    "ExtractLimits",
    "Extractor",
    "TextBudget",
    "decode_text",
    "encrypted",
    "extract_part",
    "extract_part_isolated",
    "html_to_text",
    "type_mismatch",
    "unscannable",
]

Isolation = Literal["auto", "fork", "inline"]


def _extract_content(part: Part, limits: ExtractLimits, budget_left: int, deadline: float) -> Extraction:
    """Run a part's handler (and everything nested in it) with a private budget copy."""
    ctx = Context(
        limits=limits,
        budget=TextBudget(budget_left),
        deadline=deadline,
        recurse_fn=extract_node,
        state=RunState(ocr_left=limits.max_ocr_images),
    )
    with deadline_alarm(deadline):
        run_handler(part, ctx)
    return ctx.out


class Extractor:
    """Extracts attachments under fixed limits, caching results by content.

    ``isolation``: ``"fork"`` parses risky formats in a forked child killed at
    the part deadline (see :mod:`gateway.extract.isolate`); ``"inline"`` parses
    in this process under a ``SIGALRM`` timer and cooperative checks;
    ``"auto"`` forks when it is safe (no other threads), else runs inline.
    """

    def __init__(self, limits: ExtractLimits | None = None, *, isolation: Isolation = "auto") -> None:
        self.limits = limits or ExtractLimits()
        self.isolation: Isolation = isolation
        self.cache = ExtractionCache(self.limits.cache_entries)

    def new_budget(self) -> TextBudget:
        """A text budget for one message: pass the same one for every part of it."""
        return TextBudget(self.limits.max_text_bytes)

    def extract(
        self,
        data: bytes,
        *,
        filename: str,
        declared_type: str,
        charset: str | None,
        location: str,
        budget: TextBudget | None = None,
    ) -> Extraction:
        """Extract readable text and findings from one attachment (or other MIME part)."""
        budget = budget if budget is not None else self.new_budget()
        result = Extraction()
        attachment, info, clash = describe(data, location, filename, declared_type)
        result.attachments.append(attachment)
        if clash is not None:
            result.findings.append(clash)
        if len(data) > self.limits.max_part_bytes:
            result.findings.append(unscannable(location, "limit:max_part_bytes"))
            return result
        key = (attachment.sha256, info.family, (charset or "").lower())
        content = self.cache.get(key, location)
        if content is None:
            part = Part(data, location, filename, declared_type, charset, info)
            content = self._run(part, budget.remaining)
            self.cache.put(key, location, content)
        result.extend(_charge(content, budget, location))
        return result

    def _run(self, part: Part, budget_left: int) -> Extraction:
        deadline = time.monotonic() + self.limits.part_timeout_s
        fork = self.isolation == "fork" or (self.isolation == "auto" and can_fork())
        if not fork or part.info.family in LOW_RISK_FAMILIES:
            return _extract_content(part, self.limits, budget_left, deadline)
        outcome = run_forked(
            functools.partial(_extract_content, part, self.limits, budget_left, deadline),
            timeout_s=self.limits.part_timeout_s,
            memory_bytes=self.limits.max_memory_bytes,
        )
        if not outcome.error and isinstance(outcome.value, Extraction):
            return outcome.value
        reason = "limit:part_timeout" if outcome.error == "timeout" else f"parser_error:{outcome.error}"
        return Extraction(findings=[unscannable(part.location, reason)])


def _charge(content: Extraction, budget: TextBudget, location: str) -> Extraction:
    """Charge a result's text to the message budget, truncating (and saying so) if it runs out."""
    charged = Extraction(findings=list(content.findings), attachments=list(content.attachments))
    for segment in content.segments:
        if budget.exhausted:
            break
        text = budget.take(segment.text)
        if text:
            charged.segments.append(Segment(segment.location, text))
    already = any(f.attributes.get("reason") == "limit:max_text_bytes" for f in charged.findings)
    if budget.exhausted and not already:
        charged.findings.append(unscannable(location, "limit:max_text_bytes"))
    return charged


def extract_part(
    data: bytes,
    *,
    filename: str,
    declared_type: str,
    charset: str | None,
    location: str,
    limits: ExtractLimits,
    budget: TextBudget | None = None,
    isolation: Isolation = "auto",
) -> Extraction:
    """Extract readable text from one attachment (no cache)."""
    return Extractor(limits, isolation=isolation).extract(
        data,
        filename=filename,
        declared_type=declared_type,
        charset=charset,
        location=location,
        budget=budget,
    )


def extract_part_isolated(
    data: bytes,
    *,
    filename: str,
    declared_type: str,
    charset: str | None,
    location: str,
    limits: ExtractLimits,
    budget: TextBudget | None = None,
) -> Extraction:
    """Like :func:`extract_part`, always parsing risky formats in a killable child process."""
    return extract_part(
        data,
        filename=filename,
        declared_type=declared_type,
        charset=charset,
        location=location,
        limits=limits,
        budget=budget,
        isolation="fork",
    )
