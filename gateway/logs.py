"""Logging set-up: one JSON object per line (default) or plain text, never message values.

A record may carry structured fields with ``extra={"fields": {...}}``; the JSON
formatter puts them at the top level of the line, beside ``ts``, ``level``,
``logger`` and ``msg``.  A message that is itself a JSON object (older call
sites log ``json.dumps(record)``) is merged the same way rather than quoted.

What could carry message content is kept out: an exception is logged as its
type and where it was raised, never its text (a database error's text can
quote the statement's parameters, which include message bytes), and a
SQLAlchemy error passed as a ``%s`` argument is shown without its parameters.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

FORMATS = ("json", "text")
# Keys the formatter writes itself; a field of the same name is prefixed rather than overwriting.
RESERVED = ("ts", "level", "logger", "msg")

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def exception_summary(exc_info: ExcInfo) -> dict[str, Any]:
    """The type and the innermost frames of an exception: enough to find the bug, no values."""
    kind, _value, tb = exc_info
    frames = traceback.extract_tb(tb)[-5:]
    return {
        "exc_type": f"{kind.__module__}.{kind.__qualname__}",
        "exc_where": [f"{f.filename}:{f.lineno} in {f.name}" for f in frames],
    }


def _safe_arg(arg: Any) -> Any:
    """A log argument with SQLAlchemy's statement and parameters removed."""
    if isinstance(arg, BaseException):
        orig = getattr(arg, "orig", None)  # sqlalchemy.exc.StatementError wraps the DBAPI error
        if orig is not None:
            first = str(orig).splitlines()[0] if str(orig) else ""
            return f"{type(arg).__name__}({type(orig).__name__}: {first})"
    return arg


def _message(record: logging.LogRecord) -> str:
    if isinstance(record.args, tuple) and record.args:
        record.args = tuple(_safe_arg(a) for a in record.args)
    return record.getMessage()


def _fields(record: logging.LogRecord, message: str) -> tuple[str, dict[str, Any]]:
    """The human message and the structured fields of a record."""
    fields: dict[str, Any] = dict(getattr(record, "fields", None) or {})
    if message.startswith("{") and message.endswith("}"):
        try:
            parsed = json.loads(message)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            fields = {**parsed, **fields}
            message = str(parsed.get("event", "")) or record.name
    return message, fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, then the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        message, fields = _fields(record, _message(record))
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": message,
        }
        for key, value in fields.items():
            line[f"field_{key}" if key in RESERVED else key] = value
        if record.exc_info and record.exc_info[0] is not None:
            line.update(exception_summary(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``LEVEL logger: message {fields}``, for a person reading a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        message, fields = _fields(record, _message(record))
        text = f"{record.levelname} {record.name}: {message}"
        if fields:
            text += " " + json.dumps(fields, ensure_ascii=False, sort_keys=True, default=str)
        if record.exc_info and record.exc_info[0] is not None:
            summary = exception_summary(record.exc_info)
            text += f" [{summary['exc_type']} at {' <- '.join(reversed(summary['exc_where']))}]"
        return text


def configure_logging(fmt: str = "json", level: int = logging.INFO) -> None:
    """Send every logger's records to stderr in ``fmt`` ("json" or "text"), replacing other handlers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Libraries that are chatty at INFO: their warnings still come through.
    for noisy in ("alembic", "uvicorn.access", "presidio-analyzer", "mail.log"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
