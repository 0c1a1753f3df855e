"""Exact data match (``EDM_MATCH``): find an agency's own records in outgoing text.

``build_index`` turns a records CSV into an index file that holds only keyed
8-byte hashes of normalised field values, each tagged with an opaque record
number (the CSV data row) and the column it came from.  ``EdmRecognizer`` hashes
candidate token windows and dates of the analysed text the same way and reports
a match when at least ``require`` distinct columns of one record occur within
``window_chars`` of each other ("name and date of birth of the same client").

Normalisation, shared by records and text so both sides hash alike:

* text is split into runs of letters and digits, NFKC-normalised and case-folded;
  a value's key is its tokens concatenated without separators, so ``CL-123 456``,
  ``cl123456`` and ``CL 123-456`` are one key, as are ``O'Brien`` and ``OBrien``;
* a value that is a whole date (``DD/MM/YYYY``, ``YYYY-MM-DD``, ``1 Jan 1980``,
  ``January 1, 1980``) gets a separate date key ``YYYYMMDD``; numeric dates are
  read day-first, the Australian way.

The hash is BLAKE2b keyed with an optional secret ``key`` (kept out of the index,
e.g. in the settings' secret store) and salted with a random per-index salt
stored in the header.  The salt stops precomputed tables and correlation between
indexes; only the secret key stops someone holding the index file from testing
guessed values (dates of birth have few possible values), so use one in
production.

File layout: ``MAGIC``, a little-endian u32 header length, a JSON header, padding
to 8 bytes, then three arrays sorted by hash: hashes (u64), record numbers (u32)
and column numbers (u8).  A lookup is a binary search (``numpy.searchsorted``)
over the hash array, done for all candidates of a text at once.
"""

from __future__ import annotations

import array
import csv
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import struct
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

ENTITY = "EDM_MATCH"
MAGIC = b"DLPEDM01"
FORMAT_VERSION = 1
DIGEST_BYTES = 8
SALT_BYTES = 16  # BLAKE2b's salt parameter is at most 16 bytes
PERSON = b"dlp-gateway-edm"  # domain separation from other uses of the same key
MAX_WINDOW_TOKENS = 8  # longest value (in tokens) that can be matched in text
MIN_VALUE_CHARS = 2  # shorter values ("A", "1") would match almost any text
DEFAULT_WINDOW_CHARS = 300
_DATE_PREFIX = "d:"
_TEXT_PREFIX = "t:"
_TOKEN = re.compile(r"[^\W_]+")
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DATE = re.compile(
    r"(?<![\w/.-])(?:"
    r"(?P<d1>\d{1,2})[/.-](?P<m1>\d{1,2})[/.-](?P<y1>\d{4})"
    r"|(?P<y2>\d{4})[/.-](?P<m2>\d{1,2})[/.-](?P<d2>\d{1,2})"
    rf"|(?P<d3>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<m3>{_MONTH_RE})\.?,?\s+(?P<y3>\d{{4}})"
    rf"|(?P<m4>{_MONTH_RE})\.?\s+(?P<d4>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y4>\d{{4}})"
    r")(?![\w/-])",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class IndexStats:
    """What ``build_index`` did; counts only, never values."""

    records: int
    columns: tuple[str, ...]
    entries: int  # distinct (hash, record, column) triples stored
    skipped_values: int  # empty, shorter than MIN_VALUE_CHARS or longer than MAX_WINDOW_TOKENS
    index_bytes: int
    seconds: float


@dataclass(frozen=True)
class Candidates:
    """Pieces of text that may be field values: spans and the hashes of their normalised keys."""

    starts: list[int]
    ends: list[int]
    hashes: npt.NDArray[np.uint64]


def parse_date(match: re.Match[str]) -> str | None:
    """The ``YYYYMMDD`` form of a ``_DATE`` match, or None if it is no real date."""
    groups = match.groupdict()
    for n in "1234":
        if groups[f"y{n}"]:
            month_text = groups[f"m{n}"]
            month = int(month_text) if month_text.isdigit() else _MONTHS[month_text.casefold()]
            try:
                date = dt.date(int(groups[f"y{n}"]), month, int(groups[f"d{n}"]))
            except ValueError:
                return None
            return date.strftime("%Y%m%d")
    return None


def _fold(token: str) -> str:
    # NFKC leaves ASCII alone; skipping it there halves the per-token cost.
    return token.casefold() if token.isascii() else unicodedata.normalize("NFKC", token).casefold()


def value_key(value: str) -> tuple[str, int] | None:
    """The normalised key of one field value and its length in tokens, or None if not indexable."""
    stripped = value.strip()
    match = _DATE.fullmatch(stripped)
    if match:
        date = parse_date(match)
        if date:
            return _DATE_PREFIX + date, 1
    tokens = [_fold(t) for t in _TOKEN.findall(stripped)]
    joined = "".join(tokens)
    if len(joined) < MIN_VALUE_CHARS or len(tokens) > MAX_WINDOW_TOKENS:
        return None
    return _TEXT_PREFIX + joined, len(tokens)


class KeyedHasher:
    """8-byte BLAKE2b of normalised keys, keyed by the secret key and the index salt."""

    def __init__(self, salt: bytes, key: bytes | None) -> None:
        self._base = hashlib.blake2b(digest_size=DIGEST_BYTES, key=key or b"", salt=salt, person=PERSON)
        # States with the key prefix already absorbed: hashing is streaming, so
        # text_state + b"abc" hashes the same as base + b"t:abc".
        self._text = self._base.copy()
        self._text.update(_TEXT_PREFIX.encode())
        self._date = self._base.copy()
        self._date.update(_DATE_PREFIX.encode())

    def digest(self, normalised: str) -> bytes:
        """The hash of one key (prefix included), as 8 little-endian bytes."""
        h = self._base.copy()  # copying a keyed state is ~2x cheaper than re-keying
        h.update(normalised.encode("utf-8"))
        return h.digest()

    def hashes(self, keys: list[str]) -> npt.NDArray[np.uint64]:
        """The hashes of many keys as a uint64 array."""
        return _as_uint64(b"".join(self.digest(k) for k in keys))

    def candidates(self, text: str, max_tokens: int, min_bytes: int, max_bytes: int) -> Candidates:
        """Every date, and every window of 1..max_tokens tokens whose key length could be indexed."""
        starts: list[int] = []
        ends: list[int] = []
        digests: list[bytes] = []
        for match in _DATE.finditer(text):
            date = parse_date(match)
            if date:
                h = self._date.copy()
                h.update(date.encode())
                digests.append(h.digest())
                starts.append(match.start())
                ends.append(match.end())
        tokens = [(m.start(), m.end(), _fold(m.group()).encode()) for m in _TOKEN.finditer(text)]
        copy = self._text.copy  # bound once: this loop runs a few times per word of text
        for i, (start, _, _) in enumerate(tokens):
            joined = b""
            for _, end, token in tokens[i : i + max_tokens]:
                joined += token
                if len(joined) > max_bytes:
                    break
                if len(joined) >= min_bytes:
                    h = copy()
                    h.update(joined)
                    digests.append(h.digest())
                    starts.append(start)
                    ends.append(end)
        return Candidates(starts, ends, _as_uint64(b"".join(digests)))


def _as_uint64(digests: bytes) -> npt.NDArray[np.uint64]:
    return np.frombuffer(digests, dtype="<u8").astype(np.uint64)


def _key_check(salt: bytes, key: bytes | None) -> str:
    """A value that shows whether a recogniser was given the key the index was built with."""
    return KeyedHasher(salt, key).digest("\x00key-check").hex()


def build_index(
    csv_path: Path,
    columns: list[str],
    out_path: Path,
    *,
    require: int = 1,
    key: bytes | None = None,
) -> IndexStats:
    """Hash the named columns of a records CSV into an EDM index file at ``out_path``.

    ``require`` is the default number of distinct columns of one record that must
    occur together for a match (a recogniser may override it).  ``key`` is an
    optional secret that is not stored; the recogniser then needs the same key.
    The CSV must have a header row naming the columns; rows are numbered from 1.
    """
    started = time.perf_counter()
    if not columns or len(columns) > 255:
        raise ValueError("columns: give between 1 and 255 column names")
    if not 1 <= require <= len(columns):
        raise ValueError(f"require must be between 1 and {len(columns)}")
    salt = os.urandom(SALT_BYTES)
    hasher = KeyedHasher(salt, key)
    hashes: array.array[int] = array.array("Q")
    records: array.array[int] = array.array("I")
    cols: array.array[int] = array.array("B")
    skipped, max_tokens, min_bytes, max_bytes, rows = 0, 1, 1 << 30, 0, 0
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{csv_path}: no column(s) named {', '.join(missing)}")
        for rows, row in enumerate(reader, start=1):
            for col_no, column in enumerate(columns):
                keyed = value_key(row.get(column) or "")
                if keyed is None:
                    skipped += 1
                    continue
                normalised, n_tokens = keyed
                if normalised.startswith(_TEXT_PREFIX):
                    length = len(normalised.encode()) - len(_TEXT_PREFIX)
                    min_bytes, max_bytes = min(min_bytes, length), max(max_bytes, length)
                    max_tokens = max(max_tokens, n_tokens)
                hashes.append(int.from_bytes(hasher.digest(normalised), "little"))
                records.append(rows)
                cols.append(col_no)
    keys_arr, rec_arr, col_arr = _sorted_unique(
        np.frombuffer(hashes, dtype=np.uint64),
        np.frombuffer(records, dtype=np.uint32),
        np.frombuffer(cols, dtype=np.uint8),
    )
    header = {
        "version": FORMAT_VERSION,
        "salt": salt.hex(),
        "keyed": key is not None,
        "key_check": _key_check(salt, key),
        "columns": list(columns),
        "require": require,
        "records": rows,
        "entries": len(keys_arr),
        "max_tokens": max_tokens,
        "min_bytes": min(min_bytes, max_bytes) if max_bytes else MIN_VALUE_CHARS,
        "max_bytes": max_bytes,
    }
    _write_index(out_path, header, keys_arr, rec_arr, col_arr)
    return IndexStats(
        records=rows,
        columns=tuple(columns),
        entries=len(keys_arr),
        skipped_values=skipped,
        index_bytes=out_path.stat().st_size,
        seconds=time.perf_counter() - started,
    )


def _sorted_unique(
    keys: npt.NDArray[np.uint64], records: npt.NDArray[np.uint32], cols: npt.NDArray[np.uint8]
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint32], npt.NDArray[np.uint8]]:
    """Sort the triples by hash (then record, column) and drop repeats of the same value in a record."""
    order = np.lexsort((cols, records, keys))
    keys, records, cols = keys[order], records[order], cols[order]
    keep = np.ones(len(keys), dtype=bool)
    if len(keys) > 1:
        keep[1:] = (keys[1:] != keys[:-1]) | (records[1:] != records[:-1]) | (cols[1:] != cols[:-1])
    return keys[keep], records[keep], cols[keep]


def _write_index(
    path: Path,
    header: dict[str, Any],
    keys: npt.NDArray[np.uint64],
    records: npt.NDArray[np.uint32],
    cols: npt.NDArray[np.uint8],
) -> None:
    """Write atomically (temp file + rename), so a running gateway never reads half an index."""
    blob = json.dumps(header, sort_keys=True).encode()
    prefix = MAGIC + struct.pack("<I", len(blob)) + blob
    prefix += b"\x00" * (-len(prefix) % 8)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as handle:
        handle.write(prefix)
        handle.write(keys.astype("<u8").tobytes())
        handle.write(records.astype("<u4").tobytes())
        handle.write(cols.astype("u1").tobytes())
    os.chmod(tmp, 0o600)
    tmp.replace(path)


@dataclass(frozen=True)
class Hits:
    """Index entries matched by candidates: one row per (candidate, record, column)."""

    starts: npt.NDArray[np.int64]
    ends: npt.NDArray[np.int64]
    records: npt.NDArray[np.uint32]
    cols: npt.NDArray[np.uint8]


class EdmIndex:
    """A loaded index: sorted hash array plus parallel record and column arrays."""

    def __init__(self, path: Path, key: bytes | None = None) -> None:
        with path.open("rb") as handle:
            if handle.read(len(MAGIC)) != MAGIC:
                raise ValueError(f"{path}: not an EDM index")
            (length,) = struct.unpack("<I", handle.read(4))
            header = json.loads(handle.read(length))
        if header.get("version") != FORMAT_VERSION:
            raise ValueError(f"{path}: unsupported EDM index version {header.get('version')}")
        salt = bytes.fromhex(header["salt"])
        if not hmac.compare_digest(header["key_check"], _key_check(salt, key)):
            raise ValueError(f"{path}: wrong or missing EDM key for this index")
        offset = len(MAGIC) + 4 + length
        offset += -offset % 8
        n = int(header["entries"])
        self.columns: tuple[str, ...] = tuple(header["columns"])
        self.require = int(header["require"])
        self.records = int(header["records"])
        self.max_tokens = int(header["max_tokens"])
        self.min_bytes = int(header["min_bytes"])
        self.max_bytes = int(header["max_bytes"])
        self.hasher = KeyedHasher(salt, key)
        self.keys = np.fromfile(path, dtype="<u8", count=n, offset=offset).astype(np.uint64, copy=False)
        self.record_ids = np.fromfile(path, dtype="<u4", count=n, offset=offset + 8 * n)
        self.col_ids = np.fromfile(path, dtype="u1", count=n, offset=offset + 12 * n)
        if len(self.keys) != n or len(self.col_ids) != n:
            raise ValueError(f"{path}: truncated EDM index")

    def lookup(self, hashes: npt.NDArray[np.uint64]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """For each hash, the index-entry range [left, right) holding it (empty if absent)."""
        # Sorted needles make numpy's binary searches walk the key array in order
        # (cache-friendly, ~5x faster at 4M keys); most needles miss, so the
        # second search runs only for the few that hit.
        order = np.argsort(hashes)
        needles = hashes[order]
        left_sorted = np.searchsorted(self.keys, needles, side="left")
        hit = left_sorted < len(self.keys)
        hit[hit] = self.keys[left_sorted[hit]] == needles[hit]
        right_sorted = left_sorted.copy()
        right_sorted[hit] = np.searchsorted(self.keys, needles[hit], side="right")
        left = np.empty_like(left_sorted)
        right = np.empty_like(right_sorted)
        left[order] = left_sorted
        right[order] = right_sorted
        return left, right

    def find(self, candidates: Candidates) -> Hits:
        """Every index entry matched by one of the candidates."""
        left, right = self.lookup(candidates.hashes)
        counts = right - left
        matched = np.nonzero(counts)[0]
        counts, left = counts[matched], left[matched]
        # Expand each [left, right) range into entry positions, vectorised.
        firsts = np.repeat(left - (np.cumsum(counts) - counts), counts)
        entries = firsts + np.arange(int(counts.sum()))
        starts = np.asarray(candidates.starts, dtype=np.int64)[matched]
        ends = np.asarray(candidates.ends, dtype=np.int64)[matched]
        return Hits(
            starts=np.repeat(starts, counts),
            ends=np.repeat(ends, counts),
            records=self.record_ids[entries],
            cols=self.col_ids[entries],
        )


@dataclass(frozen=True)
class Match:
    """One record whose fields were found together: span, record number, column numbers."""

    start: int
    end: int
    record: int
    cols: frozenset[int]


def record_matches(hits: Hits, require: int, window_chars: int) -> list[Match]:
    """Clusters of hits of one record with ``require`` distinct columns within ``window_chars``."""
    # One int64 per (record, column) pair: np.unique on a 1-D array is far faster than with axis=.
    pairs = np.unique(hits.records.astype(np.int64) << 8 | hits.cols.astype(np.int64))
    recs, n_cols = np.unique(pairs >> 8, return_counts=True)
    wanted = recs[n_cols >= require]
    if not len(wanted):
        return []
    keep = np.isin(hits.records, wanted)
    order = np.lexsort((hits.starts[keep], hits.records[keep]))
    starts, ends = hits.starts[keep][order], hits.ends[keep][order]
    records, cols = hits.records[keep][order], hits.cols[keep][order]
    bounds = np.flatnonzero(np.diff(records)) + 1
    matches: list[Match] = []
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(records)], strict=True):
        matches.extend(
            _clusters(
                starts[lo:hi].tolist(),
                ends[lo:hi].tolist(),
                cols[lo:hi].tolist(),
                int(records[lo]),
                require,
                window_chars,
            )
        )
    return matches


def _clusters(
    starts: list[int], ends: list[int], cols: list[int], record: int, require: int, window: int
) -> Iterator[Match]:
    """Non-overlapping windows (hits sorted by start) holding ``require`` distinct columns."""
    i = 0
    while i < len(starts):
        j = i
        while j + 1 < len(starts) and starts[j + 1] - starts[i] <= window:
            j += 1
        found = frozenset(cols[i : j + 1])
        if len(found) >= require:
            yield Match(starts[i], max(ends[i : j + 1]), record, found)
            i = j + 1
        else:
            i += 1


class EdmRecognizer(EntityRecognizer):
    """Presidio recogniser reporting ``EDM_MATCH`` for fields of one record found together.

    Attributes of each result (under ``recognition_metadata["attributes"]``):
    ``columns`` (matched column names, comma-separated), ``record`` (the CSV row
    number of one matching record) and ``records`` (how many records matched the
    same span).  Never a value.
    """

    name: str  # set by EntityRecognizer.__init__

    def __init__(
        self,
        index_path: Path,
        *,
        key: bytes | None = None,
        require: int | None = None,
        window_chars: int = DEFAULT_WINDOW_CHARS,
        name: str | None = None,
    ) -> None:
        # Loaded before super().__init__, which calls load() and expects a ready recogniser.
        self.index = EdmIndex(index_path, key)
        self.require = require if require is not None else self.index.require
        self.window_chars = window_chars
        super().__init__(supported_entities=[ENTITY], name=name or "EdmRecognizer")

    def load(self) -> None:
        """Nothing to do: the index is loaded in the constructor."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        """Report each span where ``require`` fields of one record occur within the window."""
        if entities and ENTITY not in entities:
            return []
        index = self.index
        candidates = index.hasher.candidates(text, index.max_tokens, index.min_bytes, index.max_bytes)
        matches = record_matches(self.index.find(candidates), self.require, self.window_chars)
        return self._results(matches)

    def _results(self, matches: list[Match]) -> list[RecognizerResult]:
        """One result per span: the record with most matched columns, and how many records matched."""
        by_span: dict[tuple[int, int], list[Match]] = {}
        for match in matches:
            by_span.setdefault((match.start, match.end), []).append(match)
        results = []
        for (start, end), same in sorted(by_span.items()):
            best = max(same, key=lambda m: (len(m.cols), -m.record))
            attributes = {
                "columns": ",".join(self.index.columns[c] for c in sorted(best.cols)),
                "record": str(best.record),
                "records": str(len(same)),
            }
            results.append(
                RecognizerResult(
                    entity_type=ENTITY,
                    start=start,
                    end=end,
                    score=min(1.0, 0.6 + 0.2 * len(best.cols)),
                    recognition_metadata={
                        RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                        RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                        "attributes": attributes,
                    },
                )
            )
        return results
