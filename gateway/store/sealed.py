"""Which stored columns are encrypted, how many rows each key sealed, and re-sealing
rows under the current key (``dlp-gateway store rekey``, and the running gateway in
the background).

Tables are named here rather than imported, because the outbox, the confirm
feature and the console define their own tables on top of the store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gateway.store.crypto import KEY_ID_BYTES, MAGIC, TEXT_PREFIX, VERSION, Keyring, Slot
from gateway.store.errors import CryptoError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SealedTable:
    """A table with encrypted columns; ``key`` is the row id bound into each value."""

    name: str
    key: str
    text: tuple[str, ...] = ()
    binary: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return self.text + self.binary

    @property
    def probe(self) -> str:
        """A small column that every row has and that shares the row's key.

        Every column of a row is sealed together (on insert, and by rekey), so the
        key of this one is the key of the row, without reading large message bytes.
        """
        return self.text[0] if self.text else self.binary[0]

    def table(self) -> sa.TableClause:
        cols: list[sa.ColumnClause[Any]] = [sa.column(self.key)]
        cols += [sa.column(c, sa.Text) for c in self.text]
        cols += [sa.column(c, sa.LargeBinary) for c in self.binary]
        return sa.table(self.name, *cols)

    def slot(self, column: str, row: Any) -> Slot:
        return Slot(self.name, column, str(row))


SEALED = (
    SealedTable("messages", "id", text=("findings", "rules", "subject"), binary=("raw",)),
    SealedTable("outbox", "id", binary=("raw",)),  # notices and copies queued for delivery
    SealedTable("confirmations", "token_hash", text=("subject",)),  # the masked subject
    SealedTable("message_notes", "id", text=("text",)),  # reviewers quote the message
)


def sealed(name: str) -> SealedTable:
    """The entry for one table."""
    return next(t for t in SEALED if t.name == name)


@dataclass(frozen=True)
class Usage:
    """Rows of one table sealed under one key (``key`` None: stored unencrypted)."""

    table: str
    key: str | None
    rows: int


def key_usage(engine: Engine) -> list[Usage]:
    """Rows per table and key, counted by the database from the values' headers."""
    found: list[Usage] = []
    with engine.connect() as conn:
        for spec in SEALED:
            col = spec.table().c[spec.probe]
            # Grouped outside a subquery: the expression's bound parameters would otherwise
            # make the GROUP BY a different expression from the one selected.
            inner = sa.select(_key_id_expression(col, spec.probe in spec.text).label("kid"))
            kids = inner.where(col.is_not(None)).subquery()
            query = sa.select(kids.c.kid, sa.func.count()).group_by(kids.c.kid)
            for key, rows in conn.execute(query).all():
                found.append(Usage(spec.name, _key_text(key), int(rows)))
    return found


def _key_id_expression(col: sa.ColumnClause[Any], text: bool) -> sa.ColumnElement[Any]:
    """The key id in a value's header, or NULL for a value stored unencrypted."""
    if text:
        start = len(TEXT_PREFIX) + 1
        is_sealed = sa.func.substr(col, 1, len(TEXT_PREFIX)) == TEXT_PREFIX
        return sa.case((is_sealed, sa.func.substr(col, start, 2 * KEY_ID_BYTES)))
    head = sa.literal(MAGIC + bytes([VERSION]), sa.LargeBinary)
    start = len(MAGIC) + 2
    return sa.case((sa.func.substr(col, 1, len(MAGIC) + 1) == head, sa.func.substr(col, start, KEY_ID_BYTES)))


def _key_text(value: Any) -> str | None:
    if value is None:
        return None
    return bytes(value).hex() if isinstance(value, bytes | memoryview) else str(value)


def unknown_keys(engine: Engine, keyring: Keyring) -> dict[str, int]:
    """Key ids the store holds rows under that ``keyring`` cannot open, with their row counts."""
    missing: dict[str, int] = {}
    for usage in key_usage(engine):
        if usage.key is not None and usage.key not in keyring.ids:
            missing[usage.key] = missing.get(usage.key, 0) + usage.rows
    return missing


@dataclass
class RekeyReport:
    """What a rekey pass did."""

    resealed: int = 0
    current: int = 0  # already under the current key
    skipped: int = 0  # changed or removed while being resealed; the next pass sees them
    failed: dict[str, str] = field(default_factory=dict)  # slot → why it cannot be read


def rekey(engine: Engine, keyring: Keyring, batch: int = 100, pause_s: float = 0.0) -> RekeyReport:
    """Re-seal every row not under the current key (or, without a key, decrypt every row).

    Each row is its own short transaction and a compare-and-set on the values it
    read, so the gateway keeps working alongside, several nodes may rekey at once,
    and a value changed meanwhile (a finished notice's bytes are dropped) is never
    written back.  ``pause_s`` between batches keeps a background pass gentle.
    """
    report = RekeyReport()
    for spec in SEALED:
        for rows in _batches(engine, spec, batch):
            for ident, probe in rows:
                if keyring.is_current(probe):
                    report.current += 1
                    continue
                _reseal_row(engine, keyring, spec, ident, report)
            if pause_s:
                time.sleep(pause_s)
    return report


def _batches(engine: Engine, spec: SealedTable, batch: int) -> Iterator[list[tuple[Any, Any]]]:
    """(row id, probe value) in row id order, ``batch`` at a time."""
    table = spec.table()
    key = table.c[spec.key]
    probe = table.c[spec.probe]
    # Only the header of a binary value is needed to know its key.
    head = sa.func.substr(probe, 1, 64).label("head") if spec.probe in spec.binary else probe
    last: Any = None
    while True:
        query = sa.select(key, head).order_by(key).limit(batch)
        if last is not None:
            query = query.where(key > last)
        with engine.connect() as conn:
            rows = [(r[0], _as_stored(r[1])) for r in conn.execute(query).all()]
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _as_stored(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview) else value


def _reseal_row(engine: Engine, keyring: Keyring, spec: SealedTable, ident: Any, report: RekeyReport) -> None:
    table = spec.table()
    key = table.c[spec.key]
    with engine.begin() as conn:
        row = (
            conn.execute(sa.select(*[table.c[c] for c in spec.columns]).where(key == ident))
            .mappings()
            .first()
        )
        if row is None:
            report.skipped += 1
            return
        old = {c: _as_stored(row[c]) for c in spec.columns}
        try:
            new = {c: _reseal(keyring, spec, c, ident, v) for c, v in old.items()}
        except CryptoError as exc:
            report.failed[f"{spec.name} {ident}"] = str(exc)
            return
        changed = _compare_and_set(conn, spec, ident, old, new)
    if changed:
        report.resealed += 1
    else:
        report.skipped += 1


def _reseal(keyring: Keyring, spec: SealedTable, column: str, ident: Any, value: Any) -> Any:
    if value is None:
        return None
    slot = spec.slot(column, ident)
    if column in spec.binary:
        return keyring.seal(keyring.open(value, slot), slot)
    return keyring.seal_text(keyring.open_text(value, slot), slot)


def _compare_and_set(
    conn: Connection, spec: SealedTable, ident: Any, old: dict[str, Any], new: dict[str, Any]
) -> bool:
    table = spec.table()
    conditions = [table.c[spec.key] == ident]
    for column, value in old.items():
        col = table.c[column]
        conditions.append(col.is_(None) if value is None else col == value)
    result = conn.execute(table.update().where(*conditions).values(**new))
    return result.rowcount == 1
