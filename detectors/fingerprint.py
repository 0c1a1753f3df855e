"""Document fingerprints (``DOCUMENT_FINGERPRINT``): catch text copied from registered documents.

A document is normalised (NFKC, case-folded, split into runs of letters and
digits, so whitespace, punctuation and line breaks do not matter), cut into
overlapping ``K_WORDS``-word shingles, each shingle hashed with a keyed 8-byte
BLAKE2b, and a subset of hashes kept by winnowing (Schleimer, Wilkerson and
Aiken, SIGMOD 2003): the smallest hash of every window of ``WINNOW`` consecutive
shingles.  Winnowing guarantees that any run of ``K_WORDS + WINNOW - 1`` words
shared with a registered document is seen, while keeping only about
``2 / (WINNOW + 1)`` of the hashes.  Changing one word only loses the shingles
that contain it, so light edits leave most fingerprints intact.

Only fingerprint hashes, a label, and counts are stored (SQLite); the hash key is
random per database and lives in its ``meta`` table, so fingerprints from two
databases cannot be correlated.

Containment is measured as ``|F(text) ∩ F(doc)| / min(|F(doc)|, |F(text)|)``:
dividing by the smaller set makes a whole document pasted into a long message,
and a paragraph of a long document pasted into a short message, both score
high.  Matched fingerprints that follow each other in the text at most
``max_gap`` words apart form a passage; the longest passage (by fingerprints)
decides, and a document is reported when either

* the ratio is at least ``threshold`` and the passage spans at least
  ``min_passage`` shingles (about ``min_passage + K_WORDS - 1`` words): the ratio
  is 1.0 for one shared sentence, so without this floor every stock phrase of a
  registered document would match.  The floor is a span of text rather than a
  count of fingerprints because winnowing keeps a random-looking subset: the
  span of a shared phrase is bounded by its length whatever the hash key; or
* the passage holds at least ``min_run`` fingerprints, whatever the ratio: a
  paragraph of a long document in a long message scores a low ratio.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import mimetypes
import os
import re
import sqlite3
import unicodedata
from collections import deque
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from gateway.extract import ExtractLimits, extract_part

ENTITY = "DOCUMENT_FINGERPRINT"
K_WORDS = 5
WINNOW = 4
DIGEST_BYTES = 8
PERSON = b"dlp-gateway-fp"
DEFAULT_THRESHOLD = 0.5
DEFAULT_MIN_PASSAGE = 15  # shingles, about 19 words
DEFAULT_MIN_RUN = 10  # fingerprints, about 25 shingles
DEFAULT_MAX_GAP = 3 * (K_WORDS + WINNOW)  # words between matched fingerprints of one passage
_TOKEN = re.compile(r"[^\W_]+")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
    label TEXT NOT NULL,
    shingles INTEGER NOT NULL,
    fingerprints INTEGER NOT NULL,
    added TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS fingerprints (
    hash INTEGER NOT NULL,
    doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    PRIMARY KEY (hash, doc_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fingerprints_doc ON fingerprints (doc_id);
"""


@dataclass(frozen=True)
class DocumentStats:
    """A registered document as stored: no content, only its label and counts."""

    doc_id: int
    label: str
    shingles: int
    fingerprints: int
    added: str = ""


@dataclass(frozen=True)
class Fingerprint:
    """One selected shingle hash and where its shingle lies in the text (chars and word number)."""

    hash: int
    start: int
    end: int
    word: int


def _tokens(text: str) -> list[tuple[int, int, bytes]]:
    """Runs of letters and digits, normalised, with their character spans."""
    return [
        # NFKC leaves ASCII alone; skipping it there saves a third of the time.
        (m.start(), m.end(), (w if w.isascii() else unicodedata.normalize("NFKC", w)).casefold().encode())
        for m in _TOKEN.finditer(text)
        for w in (m.group(),)
    ]


def shingle_hashes(tokens: list[bytes], key: bytes) -> list[int]:
    """The keyed hash (signed 64-bit, as SQLite stores it) of every ``K_WORDS``-token shingle."""
    copy = hashlib.blake2b(digest_size=DIGEST_BYTES, key=key, person=PERSON).copy
    out = []
    for i in range(len(tokens) - K_WORDS + 1):
        h = copy()
        h.update(b" ".join(tokens[i : i + K_WORDS]))
        out.append(int.from_bytes(h.digest(), "little", signed=True))
    return out


def winnow(hashes: list[int], window: int = WINNOW) -> list[int]:
    """Robust winnowing: positions of the minimum hash of each window (rightmost on ties), each once."""
    if len(hashes) <= window:
        return [min(range(len(hashes)), key=hashes.__getitem__)] if hashes else []
    selected: list[int] = []
    best: deque[int] = deque()  # positions whose hashes increase: the head is the window minimum
    for i, value in enumerate(hashes):
        while best and hashes[best[-1]] >= value:
            best.pop()
        best.append(i)
        if best[0] <= i - window:
            best.popleft()
        if i >= window - 1 and (not selected or selected[-1] != best[0]):
            selected.append(best[0])
    return selected


def fingerprint(text: str, key: bytes) -> tuple[int, list[Fingerprint]]:
    """The shingle count of a text and its winnowed fingerprints."""
    tokens = _tokens(text)
    hashes = shingle_hashes([t[2] for t in tokens], key)
    prints = [Fingerprint(hashes[i], tokens[i][0], tokens[i + K_WORDS - 1][1], i) for i in winnow(hashes)]
    return len(hashes), prints


@contextmanager
def _connect(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A connection with the schema in place, committing on success."""
    with closing(sqlite3.connect(db_path)) as conn:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.executescript(_SCHEMA)
        with conn:
            yield conn


def _db_key(conn: sqlite3.Connection) -> bytes:
    """The database's hash key, created on first use."""
    row = conn.execute("SELECT value FROM meta WHERE name = 'key'").fetchone()
    if row:
        return bytes(row[0])
    key = os.urandom(32)
    conn.execute("INSERT INTO meta (name, value) VALUES ('key', ?)", (key,))
    return key


def read_document(path: Path, limits: ExtractLimits | None = None) -> str:
    """A document's text via the gateway's own extractor (so registration sees what scanning sees)."""
    declared = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    extraction = extract_part(
        path.read_bytes(),
        filename=path.name,
        declared_type=declared,
        charset=None,
        location=path.name,
        limits=limits or ExtractLimits(),
    )
    text = "\n\n".join(s.text for s in extraction.segments)
    if not text.strip():
        reasons = ", ".join(sorted({f.entity_type for f in extraction.findings})) or "no text"
        raise ValueError(f"{path}: cannot fingerprint ({reasons})")
    return text


def add_documents(db_path: Path, files: list[Path], *, label: str | None = None) -> list[DocumentStats]:
    """Register documents; all or none (a file that cannot be read or is too short raises ValueError).

    Each document is labelled ``label`` if given, else its file name; the label is
    what findings show, so choose one that may be shown to a sender.
    """
    texts = [(path, read_document(path)) for path in files]
    added = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    stats: list[DocumentStats] = []
    with _connect(db_path) as conn:
        key = _db_key(conn)
        for path, text in texts:
            shingles, prints = fingerprint(text, key)
            hashes = sorted({p.hash for p in prints})
            if not hashes:
                raise ValueError(f"{path}: too short to fingerprint (fewer than {K_WORDS} words)")
            name = label or path.name
            cur = conn.execute(
                "INSERT INTO documents (label, shingles, fingerprints, added) VALUES (?, ?, ?, ?)",
                (name, shingles, len(hashes), added),
            )
            doc_id = int(cur.lastrowid or 0)
            conn.executemany(
                "INSERT INTO fingerprints (hash, doc_id) VALUES (?, ?)", ((h, doc_id) for h in hashes)
            )
            stats.append(DocumentStats(doc_id, name, shingles, len(hashes), added))
    if db_path.exists():
        os.chmod(db_path, 0o600)
    return stats


def list_documents(db_path: Path) -> list[DocumentStats]:
    """Every registered document, oldest first."""
    with _connect(db_path) as conn:
        rows = conn.execute(
            "SELECT id, label, shingles, fingerprints, added FROM documents ORDER BY id"
        ).fetchall()
    return [DocumentStats(*row) for row in rows]


def remove_document(db_path: Path, doc_id: int) -> bool:
    """Forget one document and its fingerprints; False if there was no such document."""
    with _connect(db_path) as conn:
        conn.execute("DELETE FROM fingerprints WHERE doc_id = ?", (doc_id,))
        return conn.execute("DELETE FROM documents WHERE id = ?", (doc_id,)).rowcount > 0


@dataclass(frozen=True)
class DocumentMatch:
    """A registered document found in a text: the matched passage and the containment."""

    doc_id: int
    start: int
    end: int
    shared: int
    similarity: float


class FingerprintIndex:
    """All fingerprints of a database in memory: hashes sorted, with their document numbers."""

    def __init__(self, db_path: Path) -> None:
        if not db_path.exists():
            raise FileNotFoundError(db_path)
        with _connect(db_path) as conn:
            self.key = _db_key(conn)
            docs = conn.execute("SELECT id, label, fingerprints FROM documents").fetchall()
            rows = conn.execute("SELECT hash, doc_id FROM fingerprints ORDER BY hash").fetchall()
        self.labels: dict[int, str] = {d[0]: d[1] for d in docs}
        self.sizes: dict[int, int] = {d[0]: d[2] for d in docs}
        pairs = np.array(rows, dtype=np.int64).reshape(-1, 2)
        self.hashes: npt.NDArray[np.int64] = np.ascontiguousarray(pairs[:, 0])
        self.doc_ids: npt.NDArray[np.int64] = np.ascontiguousarray(pairs[:, 1])

    def matches(
        self, prints: list[Fingerprint], *, threshold: float, min_passage: int, min_run: int, max_gap: int
    ) -> list[DocumentMatch]:
        """Registered documents the fingerprints match, by containment or by a close run."""
        unique = {p.hash: p for p in prints}  # a repeated passage counts once
        if not unique or not len(self.hashes):
            return []
        queried = np.fromiter(unique, dtype=np.int64, count=len(unique))
        left = np.searchsorted(self.hashes, queried, side="left")
        right = np.searchsorted(self.hashes, queried, side="right")
        per_doc: dict[int, list[Fingerprint]] = {}
        for i in np.nonzero(right > left)[0]:
            fp = unique[int(queried[i])]
            for doc in self.doc_ids[left[i] : right[i]].tolist():
                per_doc.setdefault(doc, []).append(fp)
        found = []
        for doc, shared in per_doc.items():
            similarity = len(shared) / min(self.sizes[doc], len(unique))
            run = _best_run(sorted(shared, key=lambda f: f.word), max_gap)
            spanned = run[-1].word - run[0].word + 1
            if (similarity >= threshold and spanned >= min_passage) or len(run) >= min_run:
                found.append(
                    DocumentMatch(doc, run[0].start, max(f.end for f in run), len(shared), similarity)
                )
        return found


def _best_run(prints: list[Fingerprint], max_gap: int) -> list[Fingerprint]:
    """The longest sequence of fingerprints (sorted by word) with at most ``max_gap`` words between."""
    best: list[Fingerprint] = []
    current: list[Fingerprint] = []
    for fp in prints:
        if current and fp.word - current[-1].word > max_gap:
            current = []
        current.append(fp)
        if len(current) > len(best):
            best = list(current)
    return best


class FingerprintRecognizer(EntityRecognizer):
    """Presidio recogniser reporting ``DOCUMENT_FINGERPRINT`` for text copied from a registered document.

    Attributes of each result (under ``recognition_metadata["attributes"]``):
    ``document`` (the label), ``document_id``, ``similarity`` (containment, two
    decimals) and ``shared`` (fingerprints in common).  The database is read once,
    when the recogniser is built.
    """

    name: str  # set by EntityRecognizer.__init__

    def __init__(
        self,
        db_path: Path,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        min_passage: int = DEFAULT_MIN_PASSAGE,
        min_run: int = DEFAULT_MIN_RUN,
        max_gap: int = DEFAULT_MAX_GAP,
        name: str | None = None,
    ) -> None:
        # Loaded before super().__init__, which calls load() and expects a ready recogniser.
        self.index = FingerprintIndex(db_path)
        self.threshold = threshold
        self.min_passage = min_passage
        self.min_run = min_run
        self.max_gap = max_gap
        super().__init__(supported_entities=[ENTITY], name=name or "FingerprintRecognizer")

    def load(self) -> None:
        """Nothing to do: the database is read in the constructor."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        """One result per registered document the text contains enough of."""
        if entities and ENTITY not in entities:
            return []
        _, prints = fingerprint(text, self.index.key)
        found = self.index.matches(
            prints,
            threshold=self.threshold,
            min_passage=self.min_passage,
            min_run=self.min_run,
            max_gap=self.max_gap,
        )
        return [self._result(m) for m in found]

    def _result(self, match: DocumentMatch) -> RecognizerResult:
        attributes = {
            "document": self.index.labels.get(match.doc_id, str(match.doc_id)),
            "document_id": str(match.doc_id),
            "similarity": f"{min(match.similarity, 1.0):.2f}",
            "shared": str(match.shared),
        }
        return RecognizerResult(
            entity_type=ENTITY,
            start=match.start,
            end=match.end,
            score=min(1.0, 0.6 + 0.4 * match.similarity),
            recognition_metadata={
                RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                "attributes": attributes,
            },
        )
