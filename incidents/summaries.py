"""The dashboard's summary tables: refreshed by beat, read by the dashboard once the data is large.

At a million incidents the dashboard's grouped queries read too many rows to answer in
half a second, so a beat task (`refresh_dashboard_task`, every DASHBOARD_REFRESH_MINUTES)
recomputes small tables from which every panel but "open incidents" is read: counts per
day (in WIB), which any period of whole days adds up exactly, and percentiles per month
(time to triage and close) or per day (delivery latency). Every table holds each
sector/province combination, "*" standing for "all" (percentiles do not add up, and a
count over every sector reads a few rows instead of all of them). The refresh replaces
every row in one transaction, so a reader sees the old figures or the new ones, never
half of each; running it twice gives
the same rows. Below DASHBOARD_LIVE_MAX_INCIDENTS reported incidents the dashboard
computes live instead (a fresh install, the demo, the tests): always current, and fast
at that size. Decision: docs/decisions/0015-dashboard-summaries.md.
"""

import time
from collections import defaultdict
from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, Count, DateField, F, Min, Q, QuerySet, Sum, Value, When
from django.db.models.functions import TruncDate, TruncMonth
from django.utils import timezone

from portal.accounts.models import Sector
from portal.regions import Province

from .models import (
    CaseDaySummary,
    DashboardRefresh,
    DeadlineDaySummary,
    DeliveryDaySummary,
    DeliveryLatencyDaySummary,
    DurationMonthSummary,
    Incident,
    IncidentDaySummary,
    Obligation,
    OperatorMonthSummary,
)

ALL = "*"  # sector or province "all" in the percentile tables
SUMMARY_MODELS = (
    OperatorMonthSummary,
    IncidentDaySummary,
    DeadlineDaySummary,
    DurationMonthSummary,
    CaseDaySummary,
    DeliveryDaySummary,
    DeliveryLatencyDaySummary,
)


def zone():
    """Return the zone the summaries' days and months are counted in: the project's (WIB)."""
    return timezone.get_default_timezone()


def latest() -> DashboardRefresh | None:
    """Return the last refresh, or None if the summaries were never filled."""
    return DashboardRefresh.objects.filter(refreshed_at__isnull=False).first()


def for_dashboard() -> DashboardRefresh | None:
    """Return the refresh to read the dashboard from, or None to compute it live.

    Live while the data is small; the first view of a large database that beat has not
    summarised yet fills the summaries itself (once).
    """
    limit = settings.DASHBOARD_LIVE_MAX_INCIDENTS
    state = latest()
    if state is None:
        if Incident.objects.reported()[: limit + 1].count() <= limit:
            return None
        state = refresh() or latest()
    return state if state is not None and state.incidents > limit else None


def for_operator_pages() -> DashboardRefresh | None:
    """Return the refresh an organisation's dashboard reads its trends from, or None to count live.

    Never refreshes: an organisation's page does not pay for the whole country's summaries.
    """
    state = latest()
    return state if state is not None and state.incidents > settings.DASHBOARD_LIVE_MAX_INCIDENTS else None


def refresh(*, now: datetime | None = None) -> DashboardRefresh | None:
    """Recompute every summary table; return the new state, or None if another refresh is running."""
    now = now or timezone.now()
    started = time.perf_counter()
    try:
        with transaction.atomic():
            DashboardRefresh.objects.get_or_create(pk=1)
    except IntegrityError:  # another worker created it at the same moment
        pass
    with transaction.atomic():
        state = DashboardRefresh.objects.select_for_update(skip_locked=True).filter(pk=1).first()
        if state is None:
            return None  # another refresh holds the row: it will write the same figures
        if connection.vendor == "postgresql":  # the grouping of a million rows, in memory
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL work_mem = '64MB'")
        for model in SUMMARY_MODELS:
            model.objects.all().delete()
        _incidents()
        _deadlines(now)
        _operators(now)
        _durations()
        _cases()
        _deliveries()
        _latencies()
        state.refreshed_at = now
        state.incidents = Incident.objects.reported().count()
        state.seconds = round(time.perf_counter() - started, 3)
        state.save()
    if connection.vendor == "postgresql":
        # Fresh statistics for the planner and a visibility map for index-only scans, without
        # waiting for autovacuum (VACUUM runs only outside a transaction: beat's case).
        command = "ANALYZE" if connection.in_atomic_block else "VACUUM ANALYZE"
        with connection.cursor() as cursor:
            for model in SUMMARY_MODELS:
                cursor.execute(f"{command} {connection.ops.quote_name(model._meta.db_table)}")
    return state


# --- Filling ------------------------------------------------------------------------------------


def _insert(model, queryset: QuerySet, *, group: dict, measures: dict) -> None:
    """INSERT INTO `model`'s table, server-side, `measures` of `queryset` grouped by `group`.

    Keys are `model`'s fields; every output column gets its own alias (a field of the
    source model cannot be selected under its bare name on every database).
    """
    quote = connection.ops.quote_name
    rows = (
        queryset.annotate(**{f"s_{name}": value for name, value in group.items()})
        .values(*(f"s_{name}" for name in group))
        .annotate(**{f"s_{name}": value for name, value in measures.items()})
        .order_by()
    )
    sql, params = rows.query.sql_with_params()
    names = [*group, *measures]
    targets = ", ".join(quote(model._meta.get_field(name).column) for name in names)
    sources = ", ".join(quote(f"s_{name}") for name in names)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(model._meta.db_table)} ({targets}) SELECT {sources} FROM ({sql}) AS summary",  # noqa: S608
            params,
        )


def _roll_up(model, *, group: list[str], measures: list[str]) -> None:
    """Add to `model` its rows for every sector, every province and both ("*"), summed from its own rows."""
    base = model.objects.exclude(sector=ALL).exclude(province=ALL)
    for sectors, provinces in ((True, False), (False, True), (True, True)):
        _insert(
            model,
            base,
            group={
                "sector": Value(ALL) if sectors else F("sector"),
                "province": Value(ALL) if provinces else F("province"),
                **{name: F(name) for name in group},
            },
            measures={name: Sum(name) for name in measures},
        )


def _incidents() -> None:
    _insert(
        IncidentDaySummary,
        Incident.objects.reported().filter(submitted_at__isnull=False),
        group={
            "day": TruncDate("submitted_at", tzinfo=zone()),
            "sector": F("operator__sector"),
            "province": F("operator__province"),
            "category": F("category"),
        },
        measures={"incidents": Count("pk")},
    )
    _roll_up(IncidentDaySummary, group=["day", "category"], measures=["incidents"])


def outcome_counts(now: datetime) -> dict:
    """Return the Count annotations of deadline outcomes as of `now` (shared with the live panel)."""
    return {
        "on_time": Count("pk", filter=Q(met_at__isnull=False, met_at__lte=F("due_at"))),
        "late": Count("pk", filter=Q(met_at__gt=F("due_at"))),
        "missed": Count("pk", filter=Q(met_at__isnull=True, waived_at__isnull=True, due_at__lte=now)),
        "waived": Count("pk", filter=Q(waived_at__isnull=False)),
    }


def _deadlines(now: datetime) -> None:
    _insert(
        DeadlineDaySummary,
        Obligation.objects.filter(incident__submitted_at__isnull=False),
        group={
            "day": TruncDate("due_at", tzinfo=zone()),
            "sector": F("incident__operator__sector"),
            "province": F("incident__operator__province"),
            "rule_code": F("rule__code"),
        },
        measures=outcome_counts(now),
    )
    _roll_up(DeadlineDaySummary, group=["day", "rule_code"], measures=["on_time", "late", "missed", "waived"])


def _operators(now: datetime) -> None:
    """Fill each organisation's months, in its own zone (one pass per zone in use)."""
    from portal.accounts.models import Operator

    for name in Operator.objects.order_by().values_list("timezone", flat=True).distinct():
        tz = ZoneInfo(name)
        _insert(
            OperatorMonthSummary,
            Incident.objects.reported().filter(submitted_at__isnull=False, operator__timezone=name),
            group={
                "operator": F("operator"),
                "month": TruncMonth("submitted_at", output_field=DateField(), tzinfo=tz),
            },
            measures={"incidents": Count("pk")},
        )
        _insert(
            OperatorMonthSummary,
            Obligation.objects.filter(
                incident__submitted_at__isnull=False, incident__operator__timezone=name
            ),
            group={
                "operator": F("incident__operator"),
                "month": TruncMonth("due_at", output_field=DateField(), tzinfo=tz),
            },
            measures=outcome_counts(now),
        )


def _cases() -> None:
    from .cases.models import CaseFlag

    _insert(
        CaseDaySummary,
        CaseFlag.objects.active().filter(duplicate_of__isnull=True, onset_date__isnull=False),
        group={
            "day": F("onset_date"),
            "sector": F("operator__sector"),
            "province": F("province"),
            "classification": F("classification"),
        },
        measures={"flags": Count("pk")},
    )
    _roll_up(CaseDaySummary, group=["day", "classification"], measures=["flags"])


def _deliveries() -> None:
    from portal.alerts.models import Delivery, DeliveryStatus

    _insert(
        DeliveryDaySummary,
        Delivery.objects.to_authorities(),
        group={
            "day": TruncDate("created_at", tzinfo=zone()),
            "sector": F("alert__sector"),
            "province": F("alert__province"),
            "status": F("status"),
            # Only dead letters are shown by authority: the others need no row per authority.
            "authority": Case(When(status=DeliveryStatus.DEAD, then=F("authority"))),
        },
        measures={"deliveries": Count("pk")},
    )
    _roll_up(DeliveryDaySummary, group=["day", "status", "authority"], measures=["deliveries"])


# Percentiles for every (sector, province) combination, "all" included.
GROUPING_SETS = "GROUPING SETS ((t, sector, province), (t, sector), (t, province), (t))"


def _durations() -> None:
    if connection.vendor == "postgresql":
        _percentiles_in_sql(
            DurationMonthSummary,
            time_column="month",
            source="""
                SELECT date_trunc('month', i.submitted_at AT TIME ZONE %s)::date AS t, o.sector, o.province,
                       extract(epoch FROM f.first - i.submitted_at) / 3600 AS triage_h,
                       extract(epoch FROM i.closed_at - i.submitted_at) / 3600 AS close_h
                FROM incidents_incident i
                JOIN accounts_operator o ON o.id = i.operator_id
                LEFT JOIN (
                    SELECT incident_id, min(created_at) AS first FROM incidents_statuschange
                    WHERE by_bssn GROUP BY incident_id
                ) f ON f.incident_id = i.id
                WHERE i.status <> 'draft' AND i.submitted_at IS NOT NULL
            """,
            percentiles={
                "triage_p50": (0.5, "triage_h"),
                "triage_p90": (0.9, "triage_h"),
                "close_p50": (0.5, "close_h"),
                "close_p90": (0.9, "close_h"),
            },
        )
        return
    rows = (
        Incident.objects.reported()
        .filter(submitted_at__isnull=False)
        .annotate(
            month=TruncMonth("submitted_at", tzinfo=zone()),
            triaged_at=Min("status_changes__created_at", filter=Q(status_changes__by_bssn=True)),
        )
        .values_list(
            "month", "operator__sector", "operator__province", "submitted_at", "triaged_at", "closed_at"
        )
    )
    hours: dict[tuple, tuple[list, list]] = {}
    for month, sector, province, submitted, triaged, closed in rows.iterator(chunk_size=5000):
        month = month.date() if isinstance(month, datetime) else month
        for key in _combinations(month, sector, province):
            triage, close = hours.setdefault(key, ([], []))
            if triaged:
                triage.append((triaged - submitted).total_seconds() / 3600)
            if closed:
                close.append((closed - submitted).total_seconds() / 3600)
    DurationMonthSummary.objects.bulk_create(
        [
            DurationMonthSummary(
                month=month,
                sector=sector,
                province=province,
                triage_p50=percentile(triage, 0.5),
                triage_p90=percentile(triage, 0.9),
                close_p50=percentile(close, 0.5),
                close_p90=percentile(close, 0.9),
            )
            for (month, sector, province), (triage, close) in hours.items()
        ],
        batch_size=1000,
    )


def _latencies() -> None:
    from portal.alerts.models import Delivery, DeliveryStatus

    if connection.vendor == "postgresql":
        _percentiles_in_sql(
            DeliveryLatencyDaySummary,
            time_column="day",
            source="""
                SELECT (d.created_at AT TIME ZONE %s)::date AS t, a.sector, a.province,
                       extract(epoch FROM d.delivered_at - a.created_at) AS seconds
                FROM alerts_delivery d JOIN alerts_alert a ON a.id = d.alert_id
                WHERE d.status = 'delivered' AND d.delivered_at IS NOT NULL
                  AND d.authority_id IS NOT NULL  -- to authorities (DeliveryQuerySet.to_authorities)
            """,
            percentiles={"p95_seconds": (0.95, "seconds")},
        )
        return
    seconds = defaultdict(list)
    rows = (
        Delivery.objects.to_authorities()
        .filter(status=DeliveryStatus.DELIVERED, delivered_at__isnull=False)
        .annotate(day=TruncDate("created_at", tzinfo=zone()))
        .values_list("day", "alert__sector", "alert__province", "delivered_at", "alert__created_at")
    )
    for day, sector, province, delivered, committed in rows.iterator(chunk_size=5000):
        for key in _combinations(day, sector, province):
            seconds[key].append((delivered - committed).total_seconds())
    DeliveryLatencyDaySummary.objects.bulk_create(
        [
            DeliveryLatencyDaySummary(
                day=day, sector=sector, province=province, p95_seconds=percentile(values, 0.95)
            )
            for (day, sector, province), values in seconds.items()
        ],
        batch_size=1000,
    )


def level(rows: QuerySet, *, sector: str, province: str, by_sector=False, by_province=False) -> QuerySet:
    """Return the rows that answer a sector/province filter, broken down by sector or province if asked."""
    every = {"sector": [*Sector.values, ""], "province": [*Province.values, ""]}
    for name, chosen, broken_down in (("sector", sector, by_sector), ("province", province, by_province)):
        if chosen:
            rows = rows.filter(**{name: chosen})
        elif broken_down:  # each value named (not "<> '*'"), so the index answers
            rows = rows.filter(**{f"{name}__in": every[name]})
        else:
            rows = rows.filter(**{name: ALL})
    return rows


def _combinations(t: date, sector: str, province: str) -> list[tuple]:
    return [(t, sector, province), (t, sector, ALL), (t, ALL, province), (t, ALL, ALL)]


def _percentiles_in_sql(model, *, time_column: str, source: str, percentiles: dict) -> None:
    """Fill `model` with percentile_cont of `source`'s columns per time unit and sector/province."""
    quote = connection.ops.quote_name
    columns = [time_column, "sector", "province", *percentiles]
    aggregates = ", ".join(
        f"percentile_cont({p}) WITHIN GROUP (ORDER BY {column})" for p, column in percentiles.values()
    )
    targets = ", ".join(quote(model._meta.get_field(c).column) for c in columns)
    sql = f"""
        INSERT INTO {quote(model._meta.db_table)} ({targets})
        SELECT t, CASE WHEN GROUPING(sector) = 1 THEN %s ELSE sector END,
               CASE WHEN GROUPING(province) = 1 THEN %s ELSE province END, {aggregates}
        FROM ({source}) AS d
        GROUP BY {GROUPING_SETS}
    """  # noqa: S608  (our own SQL; values travel as parameters)
    with connection.cursor() as cursor:
        cursor.execute(sql, [ALL, ALL, timezone.get_default_timezone_name()])


def percentile(values: list[float], p: float) -> float | None:
    """Return the p-th percentile with linear interpolation (PostgreSQL's percentile_cont), None if empty."""
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * p
    low, high = int(k), min(int(k) + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (k - low)
