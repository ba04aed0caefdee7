"""Counts for BSSN: the epidemic curve (flags per day by classification) and per province.

Small counts (1 to 4) are shown as "<5": a count that small, next to a province and a
day, can point to a person.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count
from django.db.models.functions import TruncDate

from portal.regions import Province

from .models import CaseFlag, Classification

SMALL = 5
CLASSES = [c for c in Classification if c != Classification.NONE]
# Chart geometry (SVG user units).
BAR_WIDTH, GAP, HEIGHT, LEFT, BOTTOM, TOP = 14, 4, 200, 40, 40, 10


def shown(count: int) -> str:
    """Return the count as displayed: "<5" for 1 to 4."""
    return f"<{SMALL}" if 0 < count < SMALL else str(count)


@dataclass
class Bar:
    x: int
    y: int
    height: int
    css: str
    title: str


@dataclass
class Curve:
    days: list[dict]
    provinces: list[dict]
    totals: dict
    bars: list[Bar]
    ticks: list[dict]
    width: int
    height: int
    axis_y: int
    y_max: int


def _window(days: int, today: date, zone: ZoneInfo) -> tuple[datetime, datetime, list[date]]:
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, time.min, tzinfo=zone)
    end = datetime.combine(today, time.min, tzinfo=zone) + timedelta(days=1)
    return start, end, [first + timedelta(days=i) for i in range(days)]


def epidemic_curve(*, days: int, today: date) -> Curve:
    """Count active flags per day (BSSN's time zone) and classification, and per province."""
    zone = ZoneInfo(settings.TIME_ZONE)
    start, end, dates = _window(days, today, zone)
    flags = CaseFlag.objects.active().filter(created_at__gte=start, created_at__lt=end)
    per_day: dict[tuple[date, str], int] = {}
    for row in (
        flags.annotate(day=TruncDate("created_at", tzinfo=zone))
        .values("day", "classification")
        .annotate(n=Count("pk"))
        .order_by()
    ):
        per_day[(row["day"], row["classification"])] = row["n"]
    per_province: dict[tuple[str, str], int] = {}
    for row in flags.values("province", "classification").annotate(n=Count("pk")).order_by():
        per_province[(row["province"], row["classification"])] = row["n"]

    day_rows = []
    for d in dates:
        counts = {c.value: per_day.get((d, c.value), 0) for c in CLASSES}
        total = sum(counts.values())
        day_rows.append(
            {
                "date": d,
                "cells": [shown(counts[c.value]) for c in CLASSES],
                "total": shown(total),
                "raw": counts,
            }
        )
    province_rows = []
    for code, name in Province.choices:
        counts = {c.value: per_province.get((code, c.value), 0) for c in CLASSES}
        total = sum(counts.values())
        province_rows.append(
            {
                "code": code,
                "name": name,
                "cells": [shown(counts[c.value]) for c in CLASSES],
                "total": shown(total),
            }
        )
    totals = {c.value: sum(r["raw"][c.value] for r in day_rows) for c in CLASSES}

    # Suppressed counts are drawn at the height of 5, so the chart reveals no more than the table.
    def drawn(n: int) -> int:
        return SMALL if 0 < n < SMALL else n

    y_max = max([sum(drawn(r["raw"][c.value]) for c in CLASSES) for r in day_rows] + [SMALL])
    scale = HEIGHT / y_max
    bars = []
    for i, row in enumerate(day_rows):
        x = LEFT + i * (BAR_WIDTH + GAP)
        base = TOP + HEIGHT
        for c in CLASSES:
            n = row["raw"][c.value]
            if not n:
                continue
            h = max(1, round(drawn(n) * scale))
            base -= h
            suppressed = " is-suppressed" if n < SMALL else ""
            bars.append(
                Bar(
                    x=x,
                    y=base,
                    height=h,
                    css=f"bar-{c.value}{suppressed}",
                    title=f"{row['date'].isoformat()} · {c.label}: {shown(n)}",
                )
            )
    ticks = [
        {"x": LEFT + i * (BAR_WIDTH + GAP) + BAR_WIDTH // 2, "label": r["date"].strftime("%d/%m")}
        for i, r in enumerate(day_rows)
        if i % max(1, len(day_rows) // 10) == 0
    ]
    return Curve(
        days=day_rows,
        provinces=province_rows,
        totals={c.value: shown(totals[c.value]) for c in CLASSES},
        bars=bars,
        ticks=ticks,
        width=LEFT + len(day_rows) * (BAR_WIDTH + GAP) + 10,
        height=TOP + HEIGHT + BOTTOM,
        axis_y=TOP + HEIGHT,
        y_max=y_max,
    )
