"""The prefilter pass over long text, a chunk at a time, leaving out recognisers that are done.

On a spreadsheet export every row matches a dozen triggers, and each match
costs a call back into Python.  Once a recogniser has found more than the
findings limit (``detectors.budget``) its matches are of no use, so past the
first chunk the text is scanned with one small database per recogniser still
at work instead of the one database of all triggers.  Ends are kept in the
chunk they fall in, so every match is reported once whatever the chunking,
and the scanned range reaches back over the longest trigger so that no match
is cut.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from detectors.prefilter import Hits, Prefilter, Trigger

# Text up to this size is scanned in one pass (all of ordinary mail).
CHUNK_BYTES = 1 << 20


@dataclass
class ChunkedPrefilter:
    """``Prefilter`` of all triggers, and of each group of consecutive triggers on demand."""

    triggers: Sequence[Trigger]
    ranges: Sequence[tuple[int, int]]  # (first trigger, count) of each group
    use_hyperscan: bool = True
    whole: Prefilter = field(init=False)
    _per_group: dict[int, Prefilter] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.whole = Prefilter(self.triggers, use_hyperscan=self.use_hyperscan)
        self.reach = max((t.width for t in self.triggers), default=0)

    @property
    def backend(self) -> str:
        """The backend of the database of all triggers."""
        return self.whole.backend

    def scan(self, data: bytes) -> Hits:
        """Every trigger over all of ``data``."""
        return self.whole.scan(data)

    def scan_chunk(self, data: bytes, lo: int, hi: int, skip: set[int]) -> Hits:
        """Match ends in ``(lo, hi]`` (offsets in ``data``) of triggers outside the groups in ``skip``."""
        if lo == 0 and hi == len(data) and not skip:
            return self.whole.scan(data)
        start = max(0, lo - self.reach)
        piece = data[start:hi]
        if not skip:
            found = self.whole.scan(piece).by_trigger
        else:
            found = {}
            for index, (first, count) in enumerate(self.ranges):
                if index not in skip and count:
                    for trigger, ends in self._group(index).scan(piece).by_trigger.items():
                        found[first + trigger] = ends
        by_trigger = {}
        for trigger, ends in found.items():
            kept = [start + end for end in ends if start + end > lo]
            if kept:
                by_trigger[trigger] = kept
        return Hits(by_trigger)

    def _group(self, index: int) -> Prefilter:
        """The database of one group's triggers, compiled the first time it is needed."""
        if index not in self._per_group:
            first, count = self.ranges[index]
            triggers = self.triggers[first : first + count]
            self._per_group[index] = Prefilter(triggers, use_hyperscan=self.use_hyperscan)
        return self._per_group[index]


def chunks(length: int, size: int = CHUNK_BYTES) -> Iterator[tuple[int, int]]:
    """``(lo, hi)`` ranges that cover ``[0, length)``; one range when the text is short."""
    if length <= size:
        yield 0, length
        return
    for lo in range(0, length, size):
        yield lo, min(length, lo + size)
