"""The audit trail: filtered, paginated, exported as CSV or JSON, with the chain checked.

Entries carry masked values only (the store guarantees it), so exporting them
does not leak what the gateway protects; every export is itself audited.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response

from gateway.console.context import Console, Viewer
from gateway.store import AuditEntry

PAGE = 100
MAX_EXPORT = 100_000


@dataclass(frozen=True)
class AuditFilter:
    actor: str = ""
    action: str = ""
    message: str = ""
    since: str = ""  # YYYY-MM-DD, in the console's time zone
    until: str = ""
    page: int = 1

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> AuditFilter:
        try:
            page = max(1, int(query.get("page", "1")))
        except ValueError:
            page = 1
        return cls(
            actor=query.get("actor", "").strip()[:64],
            action=query.get("action", "").strip()[:32],
            message=query.get("message", "").strip()[:32],
            since=_date_or_blank(query.get("since", "")),
            until=_date_or_blank(query.get("until", "")),
            page=page,
        )

    def query_string(self, **changes: object) -> str:
        values = {**self.__dict__, **changes}
        return urlencode(
            {k: v for k, v in values.items() if v not in ("", None) and not (k == "page" and v == 1)}
        )

    def matches(self, entry: AuditEntry, zone: ZoneInfo) -> bool:
        if self.actor and self.actor.lower() not in entry.actor.lower():
            return False
        if self.action and entry.action != self.action:
            return False
        if self.message and entry.message != self.message:
            return False
        day = entry.at.astimezone(zone).date()
        if self.since and day < date.fromisoformat(self.since):
            return False
        return not (self.until and day > date.fromisoformat(self.until))


def filtered(console: Console, flt: AuditFilter) -> tuple[list[AuditEntry], list[str]]:
    """Matching entries, newest first, and every action name (for the filter menu)."""
    trail: list[AuditEntry] = [*console.store.audit_trail(flt.message or None)]
    actions = sorted({e.action for e in trail})
    chosen = [e for e in reversed(trail) if flt.matches(e, console.zone)]
    return chosen, actions


async def audit_page(console: Console, request: Request, viewer: Viewer) -> Response:
    flt = AuditFilter.from_query(request.query_params)
    entries, actions = await asyncio.to_thread(filtered, console, flt)
    problems = await asyncio.to_thread(console.store.verify_audit)
    pages = max(1, -(-len(entries) // PAGE))
    page = min(flt.page, pages)
    shown = entries[(page - 1) * PAGE : page * PAGE]
    return console.render(
        request,
        "audit.html",
        viewer,
        entries=shown,
        total=len(entries),
        page=page,
        pages=pages,
        flt=flt,
        actions=actions,
        problems=problems,
        detail=lambda e: json.dumps(e.detail, ensure_ascii=False, sort_keys=True),
    )


async def audit_export(console: Console, request: Request, viewer: Viewer) -> Response:
    """The filtered trail as CSV or JSON lines, hashes included so a copy can be checked."""
    flt = AuditFilter.from_query(request.query_params)
    fmt = request.query_params.get("format", "csv")
    entries, _ = await asyncio.to_thread(filtered, console, flt)
    entries = list(reversed(entries))[:MAX_EXPORT]  # oldest first, as the chain runs
    await asyncio.to_thread(
        console.store.record,
        viewer.user.username,
        "audit-exported",
        None,
        {"format": fmt, "entries": len(entries), "filter": flt.query_string()},
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    if fmt == "json":
        body = "".join(json.dumps(_row(e), ensure_ascii=False) + "\n" for e in entries)
        return _attachment(body, "application/x-ndjson", f"audit-{stamp}.jsonl")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["seq", "at", "actor", "action", "message", "detail", "prev_hash", "hash"])
    for e in entries:
        row = _row(e)
        writer.writerow(
            [
                _cell(str(row[k]))
                for k in ("seq", "at", "actor", "action", "message", "detail", "prev_hash", "hash")
            ]
        )
    return _attachment(out.getvalue(), "text/csv", f"audit-{stamp}.csv")


def _row(e: AuditEntry) -> dict[str, object]:
    return {
        "seq": e.seq,
        "at": e.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": e.actor,
        "action": e.action,
        "message": e.message or "",
        "detail": json.dumps(e.detail, ensure_ascii=False, sort_keys=True),
        "prev_hash": e.prev_hash,
        "hash": e.hash,
    }


def _cell(value: str) -> str:
    # A spreadsheet would run a cell starting with these as a formula (CSV injection).
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _attachment(body: str, media_type: str, filename: str) -> Response:
    return Response(
        body.encode("utf-8"),
        media_type=media_type,
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


def _date_or_blank(value: str) -> str:
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        return ""
