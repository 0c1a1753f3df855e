"""Dashboard figures: what the gateway kept today and over the last 14 days, and
a server-side SVG bar chart of it (no scripts, so it works on isolated networks).

The store holds only messages the gateway kept (held or awaiting the sender),
so these counts are of kept messages; passed mail is counted by the metrics.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

import sqlalchemy as sa
from markupsafe import Markup, escape

from gateway.console.content import mask_with_excerpts
from gateway.model import Finding
from gateway.review import REVIEWABLE
from gateway.store import Store, open_message_text
from gateway.store.schema import messages

DAYS = 14


@dataclass(frozen=True)
class Oldest:
    id: str
    created_at: datetime
    sender: str
    subject: str


@dataclass
class Dashboard:
    today_by_decision: dict[str, int]
    today_by_status: dict[str, int]
    period_by_decision: dict[str, int]
    period_by_status: dict[str, int]
    per_day: list[tuple[date, int, int]]  # day, kept, still awaiting review
    top_rules: list[tuple[str, int]]
    top_senders: list[tuple[str, int]]
    waiting: int
    oldest: Oldest | None


def load_dashboard(store: Store, zone: tzinfo, now: datetime | None = None) -> Dashboard:
    """Counts for the dashboard, with days as the console's time zone sees them."""
    now = now or datetime.now(UTC)
    today = now.astimezone(zone).date()
    first_day = today - timedelta(days=DAYS - 1)
    since = datetime.combine(first_day, datetime.min.time(), zone).astimezone(UTC)
    query = sa.select(
        messages.c.id,
        messages.c.status,
        messages.c.decision,
        messages.c.created_at,
        messages.c.sender,
        messages.c.rules,
    ).where(messages.c.created_at >= since)
    with store.engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
        oldest_row = (
            conn.execute(
                sa.select(
                    messages.c.id,
                    messages.c.created_at,
                    messages.c.sender,
                    messages.c.subject,
                    messages.c.findings,
                )
                .where(messages.c.status.in_(REVIEWABLE))
                .order_by(messages.c.created_at)
                .limit(1)
            )
            .mappings()
            .first()
        )
        waiting = conn.execute(
            sa.select(sa.func.count()).select_from(messages).where(messages.c.status.in_(REVIEWABLE))
        ).scalar_one()
    days: dict[date, list[int]] = {first_day + timedelta(days=i): [0, 0] for i in range(DAYS)}
    today_dec: Counter[str] = Counter()
    today_status: Counter[str] = Counter()
    dec: Counter[str] = Counter()
    status: Counter[str] = Counter()
    rules: Counter[str] = Counter()
    senders: Counter[str] = Counter()
    for row in rows:
        day = _aware(row["created_at"]).astimezone(zone).date()
        if day in days:
            days[day][0] += 1
            days[day][1] += row["status"] in REVIEWABLE
        dec[row["decision"]] += 1
        status[row["status"]] += 1
        if day == today:
            today_dec[row["decision"]] += 1
            today_status[row["status"]] += 1
        rules.update({r["name"] for r in json.loads(open_message_text(store.keyring, row, "rules"))})
        senders[row["sender"].lower()] += 1
    oldest = None
    if oldest_row:
        oldest = Oldest(
            oldest_row["id"],
            _aware(oldest_row["created_at"]),
            oldest_row["sender"],
            mask_with_excerpts(
                open_message_text(store.keyring, oldest_row, "subject"),
                [
                    Finding.from_json(f)
                    for f in json.loads(open_message_text(store.keyring, oldest_row, "findings"))
                ],
            ),
        )
    return Dashboard(
        today_by_decision=dict(today_dec),
        today_by_status=dict(today_status),
        period_by_decision=dict(dec),
        period_by_status=dict(status),
        per_day=[(d, v[0], v[1]) for d, v in days.items()],
        top_rules=rules.most_common(10),
        top_senders=senders.most_common(10),
        waiting=int(waiting),
        oldest=oldest,
    )


def bar_chart(per_day: list[tuple[date, int, int]], width: int = 700, height: int = 220) -> Markup:
    """Kept messages per day as an inline SVG bar chart; the still-waiting part of each bar
    is drawn darker.  Every value is escaped; styling comes from the console's CSS classes."""
    top = max((kept for _, kept, _ in per_day), default=0) or 1
    left, bottom, right, head = 36, 34, 8, 12
    plot_w, plot_h = width - left - right, height - bottom - head
    slot = plot_w / max(len(per_day), 1)
    bar_w = slot * 0.7
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="Messages kept per day, last {len(per_day)} days">',
        f"<title>Messages kept per day, last {len(per_day)} days</title>",
        f'<line class="axis" x1="{left}" y1="{head + plot_h}" x2="{width - right}" y2="{head + plot_h}"/>',
        f'<text class="tick" x="{left - 6}" y="{head + 4}" text-anchor="end">{top}</text>',
        f'<text class="tick" x="{left - 6}" y="{head + plot_h}" text-anchor="end">0</text>',
    ]
    for index, (day, kept, waiting) in enumerate(per_day):
        x = left + index * slot + (slot - bar_w) / 2
        kept_h = plot_h * kept / top
        wait_h = plot_h * waiting / top
        label = escape(f"{day:%a %d %b}: {kept} kept, {waiting} awaiting review")
        parts.append(f"<g><title>{label}</title>")
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{head + plot_h - kept_h:.1f}" '
            f'width="{bar_w:.1f}" height="{kept_h:.1f}"/>'
        )
        if waiting:
            parts.append(
                f'<rect class="bar-waiting" x="{x:.1f}" y="{head + plot_h - wait_h:.1f}" '
                f'width="{bar_w:.1f}" height="{wait_h:.1f}"/>'
            )
        if kept:
            parts.append(
                f'<text class="value" x="{x + bar_w / 2:.1f}" y="{head + plot_h - kept_h - 3:.1f}" '
                f'text-anchor="middle">{kept}</text>'
            )
        parts.append(
            f'<text class="tick" x="{x + bar_w / 2:.1f}" y="{height - 18}" text-anchor="middle">'
            f"{escape(f'{day:%d}')}</text>"
        )
        parts.append(
            f'<text class="tick" x="{x + bar_w / 2:.1f}" y="{height - 6}" text-anchor="middle">'
            f"{escape(f'{day:%b}')}</text></g>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
