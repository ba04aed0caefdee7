"""BSSN's dashboard: the country's incidents, deadlines, suspected cases and alert delivery at a glance.

Each panel is a small table of numbers (columns and rows) computed by one grouped query;
the page draws it as a server-rendered SVG chart (no script; colours come from CSS
classes, as the strict CSP wants) and shows the same numbers as an accessible table,
downloadable as CSV or XLSX. On a large database the panels read the summary tables
that beat refreshes (incidents/summaries.py) and say how fresh they are; open incidents
are always counted live.
"""

import csv
import functools
import io
import math
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from html import escape

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db import connection, models
from django.db.models import Case, Count, F, Min, Q, QuerySet, Sum, Value, When
from django.db.models.functions import TruncDate, TruncMonth, TruncWeek
from django.http import Http404, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.formats import localize
from django.utils.safestring import mark_safe
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from portal.accounts.models import Sector
from portal.regions import Province
from portal.spreadsheets import csv_cell
from portal.timefmt import format_zoned

from . import summaries
from .models import (
    OPEN_STATUSES,
    CaseDaySummary,
    Category,
    DashboardRefresh,
    DeadlineDaySummary,
    DeliveryDaySummary,
    DeliveryLatencyDaySummary,
    DurationMonthSummary,
    Incident,
    IncidentDaySummary,
    Obligation,
    OperatorMonthSummary,
    Severity,
)
from .summaries import percentile

DASHBOARD_PERM = "incidents.view_incident"
DEFAULT_WEEKS = 26
MAX_DAYS = 3 * 366
TABLE_MAX_ROWS = 2000  # beyond, a table is for the spreadsheet, not the page
AGE_BUCKETS = [(1, "< 1 d"), (7, "1–7 d"), (30, "7–30 d"), (None, "> 30 d")]


class DashboardFilterForm(forms.Form):
    since = forms.DateField(
        label=gettext_lazy("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=gettext_lazy("Until"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    sector = forms.ChoiceField(
        label=gettext_lazy("Sector"),
        required=False,
        choices=[("", gettext_lazy("All sectors")), *Sector.choices],
    )
    province = forms.ChoiceField(
        label=gettext_lazy("Province"),
        required=False,
        choices=[("", gettext_lazy("All provinces")), *Province.choices],
    )

    def clean(self):
        cleaned = super().clean()
        today = timezone.localdate()
        until = cleaned.get("until") or today
        since = cleaned.get("since") or until - timedelta(weeks=DEFAULT_WEEKS)
        if since > until:
            raise forms.ValidationError(_("The start of the period is after its end."))
        if (until - since).days > MAX_DAYS:
            raise forms.ValidationError(_("Choose a period of at most three years."))
        cleaned["since"], cleaned["until"] = since, until
        return cleaned


@dataclass
class Filters:
    since: datetime
    until: datetime
    sector: str = ""
    province: str = ""
    # Read the summary tables (as of this refresh) rather than the live tables; None: live.
    summary: DashboardRefresh | None = None

    @classmethod
    def from_form(cls, form: DashboardFilterForm, *, summary: DashboardRefresh | None = None) -> "Filters":
        data = form.cleaned_data
        zone = timezone.get_current_timezone()
        return cls(
            since=datetime.combine(data["since"], time.min, tzinfo=zone),
            until=datetime.combine(data["until"] + timedelta(days=1), time.min, tzinfo=zone),
            sector=data["sector"],
            province=data["province"],
            summary=summary,
        )

    def operators(self, prefix: str) -> Q:
        """Return the sector/province condition on the operator reached through `prefix`."""
        q = Q()
        if self.sector:
            q &= Q(**{f"{prefix}sector": self.sector})
        if self.province:
            q &= Q(**{f"{prefix}province": self.province})
        return q

    def days(self) -> tuple[date, date]:
        """Return the period as days in the summaries' zone: the first, and the one after the last."""
        zone = summaries.zone()
        return timezone.localtime(self.since, zone).date(), timezone.localtime(self.until, zone).date()

    def summary_rows(self, model, *, by_sector: bool = False, by_province: bool = False) -> QuerySet:
        """Return `model`'s rows of the period and filters, by sector or by province if asked."""
        first, after = self.days()
        rows = model.objects.filter(day__gte=first, day__lt=after)
        return summaries.level(
            rows, sector=self.sector, province=self.province, by_sector=by_sector, by_province=by_province
        )

    def whole_months(self) -> "Filters":
        """Return these filters stretched to the whole months the period touches."""
        since = self.since.replace(day=1)
        last = self.until - timedelta(days=1)
        until = (last.replace(day=1) + timedelta(days=32)).replace(day=1)
        return replace(self, since=since, until=until)


@dataclass
class Panel:
    """One chart: x labels (`categories`), stacked `series` {name: [value per category]} and its table."""

    key: str
    title: str
    columns: list[str]
    rows: list[list]
    categories: list[str] = field(default_factory=list)
    series: dict[str, list[float]] = field(default_factory=dict)
    unit: str = ""
    # The delivery panel's slowest day (95th percentile from commit to receipt) and dead letters.
    p95_seconds: float | None = None
    p95_day: str = ""
    dead_by_authority: list = field(default_factory=list)
    # When the figures were computed: live now, or at the summaries' last refresh.
    as_of: datetime | None = None
    live: bool = True

    @property
    def table_too_long(self) -> bool:
        """Say whether the page should offer the download instead (three years of a curve by province)."""
        return len(self.rows) > TABLE_MAX_ROWS

    @property
    def table_body(self) -> str:
        """Return the table's rows as HTML (a template loop took seconds over thousands of rows)."""

        def cell(value) -> str:
            if type(value) is int:  # most cells: nothing to escape or localise
                return str(value)
            return escape(str(localize(value) if isinstance(value, float) else value))

        rows = (
            f'<tr><th scope="row">{cell(row[0])}</th>{"".join(f"<td>{cell(c)}</td>" for c in row[1:])}</tr>'
            for row in self.rows
        )
        # Every cell is escaped above.
        return mark_safe("".join(rows))  # noqa: S308  # nosec B308 B703

    @property
    def as_of_display(self) -> str:
        return format_zoned(self.as_of, summaries.zone())

    @property
    def as_of_here(self) -> str:
        """Return the figures' time in the active zone: an organisation reads its own."""
        return format_zoned(self.as_of)

    @property
    def svg(self) -> str:
        return stacked_bars_svg(self.categories, self.series, title=self.title, unit=self.unit)


# --- Charts --------------------------------------------------------------------------------

CHART_W, CHART_H, PAD_L, PAD_B, PAD_T = 720, 240, 48, 40, 10


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def stacked_bars_svg(
    categories: list[str], series: dict[str, list[float]], *, title: str, unit: str = ""
) -> str:
    """Return an SVG stacked bar chart; series colours are CSS classes `chart-s0`…`chart-s9`."""
    totals = [sum(values[i] for values in series.values()) for i in range(len(categories))]
    top = _nice_max(max(totals, default=0))
    if all(float(v).is_integer() for values in series.values() for v in values):
        # Counts: whole-number ticks (a chart of one incident reads 0 1 2 3 4, not 0 0.25 0.5).
        top = max(top, 4) if top < 4 else math.ceil(top / 4) * 4
    plot_w, plot_h = CHART_W - PAD_L - 8, CHART_H - PAD_B - PAD_T
    slot = plot_w / max(len(categories), 1)
    bar_w = max(slot * 0.7, 1)
    # Built with f-strings and html.escape (every text escaped here): format_html per
    # rectangle took most of a second for a three-year chart of days.
    parts = []
    for tick in range(5):
        y = PAD_T + plot_h - plot_h * tick / 4
        parts.append(
            f'<line class="chart-grid" x1="{PAD_L}" x2="{CHART_W - 8}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="chart-axis" x="{PAD_L - 4}" y="{y + 4:.1f}" text-anchor="end">'
            f"{top * tick / 4:g}</text>"
        )
    label_every = max(1, math.ceil(len(categories) / 12))
    names = [(n % 10, escape(str(name))) for n, name in enumerate(series)]
    columns = list(series.values())
    unit = escape(unit)
    for i, label in enumerate(categories):
        label = escape(str(label))
        x = PAD_L + slot * i + (slot - bar_w) / 2
        base = PAD_T + plot_h
        for (n, name), values in zip(names, columns, strict=True):
            value = values[i]
            if not value:
                continue
            height = plot_h * value / top
            base -= height
            parts.append(
                f'<rect class="chart-s{n}" x="{x:.1f}" y="{base:.1f}" '
                f'width="{bar_w:.1f}" height="{height:.1f}">'
                f"<title>{label} · {name}: {value:g}{unit}</title></rect>"
            )
        if i % label_every == 0:
            parts.append(
                f'<text class="chart-axis" x="{x + bar_w / 2:.1f}" y="{CHART_H - PAD_B + 14}" '
                f'text-anchor="middle">{label}</text>'
            )
    # Every text above is escaped.
    return mark_safe(  # noqa: S308  # nosec B308 B703
        f'<svg class="chart" viewBox="0 0 {CHART_W} {CHART_H}" role="img" aria-label="{escape(str(title))}" '
        f'xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>'
    )


# --- Panels -----------------------------------------------------------------------------------


@functools.cache
def _cached_labels(choices: type[models.Choices], language: str | None) -> dict:
    return {value: str(label) for value, label in choices.choices}


def _labels(choices: type[models.Choices]):
    """Return a function giving a value's label in the reader's language (tables ask thousands of times)."""
    labels = _cached_labels(choices, get_language())
    return lambda value: labels.get(value, value or "—")


def _label(choices: type[models.Choices], value) -> str:
    return _labels(choices)(value)


def _pivot(key: str, title: str, rows, *, x: str, group: str, choices, x_format) -> Panel:
    """Turn grouped rows {x, group, n} into a stacked panel with one series per group."""
    label = _labels(choices)
    xs = sorted({r[x] for r in rows if r[x] is not None})
    groups = sorted({r[group] for r in rows})
    index = {value: i for i, value in enumerate(xs)}
    series = {label(g): [0] * len(xs) for g in groups}
    for r in rows:
        if r[x] is not None:
            series[label(r[group])][index[r[x]]] += r["n"]
    table = [[x_format(value), *(series[label(g)][i] for g in groups)] for i, value in enumerate(xs)]
    return Panel(
        key=key,
        title=title,
        columns=[_("Period"), *(label(g) for g in groups)],
        rows=table,
        categories=[x_format(value) for value in xs],
        series=series,
    )


def _week(value) -> str:
    return timezone.localtime(value).date().isoformat() if isinstance(value, datetime) else value.isoformat()


def _month(value) -> str:
    return (timezone.localtime(value) if isinstance(value, datetime) else value).strftime("%Y-%m")


def _incidents(filters: Filters):
    return Incident.objects.reported().filter(
        filters.operators("operator__"), submitted_at__gte=filters.since, submitted_at__lt=filters.until
    )


def incidents_per_week(filters: Filters, *, by: str) -> Panel:
    column, choices = ("operator__sector", Sector) if by == "sector" else ("category", Category)
    if filters.summary:
        group = "sector" if by == "sector" else "category"
        rows = (
            filters.summary_rows(IncidentDaySummary, by_sector=by == "sector")
            .annotate(week=TruncWeek("day"))
            .values("week", group)
            .annotate(n=Sum("incidents"))
            .order_by()
        )
        rows = [{"week": r["week"], "group": r[group], "n": r["n"]} for r in rows]
    else:
        rows = (
            _incidents(filters)
            .annotate(week=TruncWeek("submitted_at"))
            .values("week", column)
            .annotate(n=Count("pk"))
            .order_by()
        )
        rows = [{"week": r["week"], "group": r[column], "n": r["n"]} for r in rows]
    title = _("Incidents per week by sector") if by == "sector" else _("Incidents per week by category")
    return _pivot(f"weekly_{by}", title, rows, x="week", group="group", choices=choices, x_format=_week)


def open_by_severity_and_age(filters: Filters, *, now=None) -> Panel:
    """Count open incidents by severity and age, live (an index holds the open ones only)."""
    now = now or timezone.now()
    labels = [label for _days, label in AGE_BUCKETS]
    bucket = Case(
        *(
            When(submitted_at__gt=now - timedelta(days=days), then=Value(label))
            for days, label in AGE_BUCKETS
            if days is not None
        ),
        default=Value(labels[-1]),
    )
    rows = (
        Incident.objects.filter(filters.operators("operator__"), status__in=OPEN_STATUSES)
        .annotate(bucket=bucket)
        .values("bucket", "bssn_severity", "severity")
        .annotate(n=Count("*"))  # not the id: the index incident_open holds every column read
        .order_by()
    )
    counts = {}
    for row in rows:
        severity = row["bssn_severity"] or row["severity"] or ""
        counts[(row["bucket"], severity)] = counts.get((row["bucket"], severity), 0) + row["n"]
    severities = [*Severity.values, ""]
    series = {
        _label(Severity, s) if s else _("Not assessed"): [counts.get((label, s), 0) for label in labels]
        for s in severities
    }
    rows = [[label, *(values[i] for values in series.values())] for i, label in enumerate(labels)]
    return Panel(
        key="open_age",
        title=_("Open incidents by severity and age"),
        columns=[_("Age"), *series],
        rows=rows,
        categories=labels,
        series=series,
    )


def _durations_in_sql(filters: Filters) -> list[list]:
    """Return [month, triage p50, p90, close p50, p90] rows, the percentiles computed by PostgreSQL."""
    ids_sql, params = _incidents(filters).values("pk").query.sql_with_params()
    sql = f"""
        SELECT month,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY triage_h),
               percentile_cont(0.9) WITHIN GROUP (ORDER BY triage_h),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY close_h),
               percentile_cont(0.9) WITHIN GROUP (ORDER BY close_h)
        FROM (
            SELECT to_char(date_trunc('month', i.submitted_at AT TIME ZONE %s), 'YYYY-MM') AS month,
                   extract(epoch FROM t.first - i.submitted_at) / 3600 AS triage_h,
                   extract(epoch FROM i.closed_at - i.submitted_at) / 3600 AS close_h
            FROM incidents_incident i
            LEFT JOIN LATERAL (
                SELECT min(s.created_at) AS first FROM incidents_statuschange s
                WHERE s.incident_id = i.id AND s.by_bssn
            ) t ON true
            WHERE i.id IN ({ids_sql})
        ) d
        GROUP BY month ORDER BY month
    """  # noqa: S608  (ids_sql is Django's own SQL; values travel as parameters)
    with connection.cursor() as cursor:
        cursor.execute(sql, [timezone.get_current_timezone_name(), *params])
        return [[month, *(round(v or 0, 1) for v in values)] for month, *values in cursor.fetchall()]


def _durations_in_python(filters: Filters) -> list[list]:
    rows = (
        _incidents(filters)
        .annotate(
            month=TruncMonth("submitted_at"),
            triaged_at=Min("status_changes__created_at", filter=Q(status_changes__by_bssn=True)),
        )
        .values_list("month", "submitted_at", "triaged_at", "closed_at")
    )
    by_month: dict = {}
    for month, submitted, triaged, closed in rows:
        triage, close = by_month.setdefault(_month(month), ([], []))
        if triaged:
            triage.append((triaged - submitted).total_seconds() / 3600)
        if closed:
            close.append((closed - submitted).total_seconds() / 3600)
    return [
        [m, *(round(percentile(v, p) or 0, 1) for v in by_month[m] for p in (0.5, 0.9))]
        for m in sorted(by_month)
    ]


def _durations_from_summaries(filters: Filters) -> list[list]:
    first, after = filters.days()
    rows = summaries.level(
        DurationMonthSummary.objects.filter(month__gte=first, month__lt=after),
        sector=filters.sector,
        province=filters.province,
    ).order_by("month")
    return [
        [_month(r.month), *(round(v or 0, 1) for v in (r.triage_p50, r.triage_p90, r.close_p50, r.close_p90))]
        for r in rows
    ]


def time_to_triage_and_close(filters: Filters) -> Panel:
    """Return p50/p90 per month of submission; a month is counted whole (percentiles do not add up by day)."""
    filters = filters.whole_months()
    columns = [_("Month"), _("Triage p50 (h)"), _("Triage p90 (h)"), _("Close p50 (h)"), _("Close p90 (h)")]
    if filters.summary:
        return _durations_panel(_durations_from_summaries(filters), columns)
    if connection.vendor == "postgresql":
        return _durations_panel(_durations_in_sql(filters), columns)
    return _durations_panel(_durations_in_python(filters), columns)


def _durations_panel(table: list[list], columns: list[str]) -> Panel:
    months = [row[0] for row in table]
    return Panel(
        key="durations",
        title=_("Time to triage and to close (hours)"),
        columns=columns,
        rows=table,
        categories=months,
        # Bars show the medians; the table adds p90.
        series={_("Triage p50 (h)"): [r[1] for r in table], _("Close p50 (h)"): [r[3] for r in table]},
        unit=" h",
    )


def deadline_compliance(filters: Filters, *, now=None) -> Panel:
    now = now or timezone.now()
    outcomes = {"on_time": _("Met on time"), "late": _("Late"), "missed": _("Missed"), "waived": _("Waived")}
    if filters.summary:
        rows = (
            filters.summary_rows(DeadlineDaySummary, by_sector=True)
            .annotate(month=TruncMonth("day"))
            .values("month", "sector", "rule_code")
            .annotate(**{k: Sum(k) for k in outcomes})
        )
    else:
        rows = (
            Obligation.objects.filter(
                filters.operators("incident__operator__"),
                incident__submitted_at__isnull=False,
                due_at__gte=filters.since,
                due_at__lt=filters.until,
            )
            .annotate(
                month=TruncMonth("due_at"), sector=F("incident__operator__sector"), rule_code=F("rule__code")
            )
            .values("month", "sector", "rule_code")
            .annotate(**summaries.outcome_counts(now))
        )
    table, per_month = [], {}
    for r in rows.order_by("month", "sector", "rule_code"):
        month = _month(r["month"])
        table.append([month, _label(Sector, r["sector"]), r["rule_code"], *(r[k] for k in outcomes)])
        totals = per_month.setdefault(month, dict.fromkeys(outcomes, 0))
        for k in outcomes:
            totals[k] += r[k]
    months = sorted(per_month)
    return Panel(
        key="compliance",
        title=_("Deadline compliance"),
        columns=[_("Month"), _("Sector"), _("Rule"), *outcomes.values()],
        rows=table,
        categories=months,
        series={label: [per_month[m][k] for m in months] for k, label in outcomes.items()},
    )


def epidemic_curve(filters: Filters) -> Panel:
    from .cases.models import CaseFlag, Classification

    if filters.summary:
        rows = (
            filters.summary_rows(CaseDaySummary, by_province=True)
            .annotate(week=TruncWeek("day"))
            .values("week", "province", "classification")
            .annotate(n=Sum("flags"))
            .order_by()
        )
    else:
        flags = CaseFlag.objects.active().filter(
            duplicate_of__isnull=True,  # possible duplicates are not counted twice
            onset_date__gte=filters.since.date(),
            onset_date__lt=filters.until.date(),
        )
        if filters.sector:
            flags = flags.filter(operator__sector=filters.sector)
        if filters.province:
            flags = flags.filter(province=filters.province)
        rows = (
            flags.annotate(week=TruncWeek("onset_date"))
            .values("week", "province", "classification")
            .annotate(n=Count("pk"))
            .order_by()
        )
    rows = list(rows)
    panel = _pivot(
        "epicurve",
        _("Suspected cases by onset week"),
        [{"week": r["week"], "group": r["classification"], "n": r["n"]} for r in rows],
        x="week",
        group="group",
        choices=Classification,
        x_format=_week,
    )
    panel.columns = [_("Onset week"), _("Province"), _("Class"), _("Cases")]
    province, classification = _labels(Province), _labels(Classification)
    panel.rows = sorted(
        [_week(r["week"]), province(r["province"]), classification(r["classification"]), r["n"]] for r in rows
    )
    return panel


def delivery_health(filters: Filters) -> Panel:
    from portal.alerts.models import Delivery, DeliveryStatus

    if filters.summary:
        deliveries = filters.summary_rows(DeliveryDaySummary)
        count = Sum("deliveries")
        rows = deliveries.values("day", "status").annotate(n=count).order_by()
        first, after = filters.days()
        latencies = DeliveryLatencyDaySummary.objects.filter(day__gte=first, day__lt=after)
        latencies = summaries.level(latencies, sector=filters.sector, province=filters.province)
        p95 = dict(latencies.values_list("day", "p95_seconds"))
    else:
        deliveries = Delivery.objects.to_authorities().filter(
            created_at__gte=filters.since, created_at__lt=filters.until
        )
        if filters.sector:
            deliveries = deliveries.filter(alert__sector=filters.sector)
        if filters.province:
            deliveries = deliveries.filter(alert__province=filters.province)
        count = Count("pk")
        rows = (
            deliveries.annotate(day=TruncDate("created_at"))
            .values("day", "status")
            .annotate(n=count)
            .order_by()
        )
        seconds: dict = {}
        for day, delivered, committed in (
            deliveries.filter(status=DeliveryStatus.DELIVERED, delivered_at__isnull=False)
            .annotate(day=TruncDate("created_at"))
            .values_list("day", "delivered_at", "alert__created_at")
            .iterator(chunk_size=5000)
        ):
            seconds.setdefault(day, []).append((delivered - committed).total_seconds())
        p95 = {day: percentile(values, 0.95) for day, values in seconds.items()}
    panel = _pivot(
        "delivery",
        _("Alert deliveries per day by outcome"),
        list(rows),
        x="day",
        group="status",
        choices=DeliveryStatus,
        x_format=lambda d: d.isoformat(),
    )
    # Percentiles do not add up across days: each day's, and the slowest day of the period.
    by_day = {day.isoformat(): round(value, 1) for day, value in p95.items()}
    panel.columns.append(_("p95 commit to receipt (s)"))
    for row in panel.rows:
        row.append(by_day.get(row[0], ""))
    if by_day:
        panel.p95_day, panel.p95_seconds = max(by_day.items(), key=lambda item: (item[1], item[0]))
    panel.dead_by_authority = list(
        deliveries.filter(status=DeliveryStatus.DEAD)
        .values("authority__name")
        .annotate(n=count)
        .order_by("-n", "authority__name")
    )
    return panel


PANELS = {
    "weekly_sector": lambda f: incidents_per_week(f, by="sector"),
    "weekly_category": lambda f: incidents_per_week(f, by="category"),
    "open_age": open_by_severity_and_age,
    "durations": time_to_triage_and_close,
    "compliance": deadline_compliance,
    "epicurve": epidemic_curve,
    "delivery": delivery_health,
}
LIVE_ALWAYS = frozenset({"open_age"})  # "open now" is small and must not lag


def build_panel(key: str, filters: Filters) -> Panel:
    """Compute one panel and note where its figures come from and how fresh they are."""
    panel = PANELS[key](filters)
    if filters.summary is None or key in LIVE_ALWAYS:
        panel.as_of, panel.live = timezone.now(), True
    else:
        panel.as_of, panel.live = filters.summary.refreshed_at, False
    return panel


def all_panels(filters: Filters) -> list[Panel]:
    return [build_panel(key, filters) for key in PANELS]


# --- Downloads and the page -----------------------------------------------------------------


def _csv(panel: Panel) -> HttpResponse:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([csv_cell(c) for c in panel.columns])
    writer.writerows([csv_cell(c) for c in row] for row in panel.rows)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="dashboard-{panel.key}.csv"'
    return response


def _xlsx(panel: Panel) -> HttpResponse:
    import xlsxwriter

    buffer = io.BytesIO()
    # Strings are written as strings: a cell starting with "=" never becomes a formula.
    workbook = xlsxwriter.Workbook(
        buffer, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    )
    sheet = workbook.add_worksheet(panel.key[:31])
    for c, title in enumerate(panel.columns):
        sheet.write_string(0, c, str(title))
    for r, row in enumerate(panel.rows, start=1):
        for c, value in enumerate(row):
            if isinstance(value, int | float):
                sheet.write_number(r, c, value)
            else:
                sheet.write_string(r, c, str(value))
    workbook.close()
    response = HttpResponse(
        buffer.getvalue(), content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    response["Content-Disposition"] = f'attachment; filename="dashboard-{panel.key}.xlsx"'
    return response


def dashboard_view(request):
    """Show the dashboard (analysts and supervisors), or one panel's numbers as CSV/XLSX."""
    if not request.user.has_perm(DASHBOARD_PERM):
        raise PermissionDenied
    form = DashboardFilterForm(request.GET or None)
    if request.GET and not form.is_valid():
        context = {**admin.site.each_context(request), "title": _("Dashboard"), "form": form, "panels": []}
        return TemplateResponse(request, "admin/incidents/dashboard.html", context, status=400)
    if not request.GET:  # the default period, shown in the filter so it can be changed
        today = timezone.localdate()
        form = DashboardFilterForm({"since": today - timedelta(weeks=DEFAULT_WEEKS), "until": today})
        form.is_valid()
    filters = Filters.from_form(form, summary=summaries.for_dashboard())
    download = request.GET.get("download")
    if download:
        if download not in PANELS:
            raise Http404
        panel = build_panel(download, filters)
        return _xlsx(panel) if request.GET.get("format") == "xlsx" else _csv(panel)
    query = request.GET.copy()
    query.pop("download", None)
    query.pop("format", None)
    context = {
        **admin.site.each_context(request),
        "title": _("Dashboard"),
        "form": form,
        "panels": all_panels(filters),
        "query": query.urlencode(),
        "refresh_minutes": settings.DASHBOARD_REFRESH_MINUTES,
    }
    return TemplateResponse(request, "admin/incidents/dashboard.html", context)


# --- The operator's own trends (organisation dashboard) ------------------------------------


def operator_trends(*, operator, months: int = 6, now=None, summary: DashboardRefresh | None = None) -> dict:
    """Return the organisation's submitted incidents per month and its deadline record, its own data only.

    Months are in the active zone (the organisation's). With `summary` the figures are read
    from OperatorMonthSummary, as of that refresh.
    """
    now = now or timezone.now()
    start = timezone.localtime(now).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for _i in range(months - 1):
        start = (start - timedelta(days=1)).replace(day=1)
    outcomes = ("on_time", "late", "missed", "waived")
    if summary:
        rows = OperatorMonthSummary.objects.filter(operator=operator)
        counts = (
            rows.filter(month__gte=start.date(), incidents__gt=0)
            .values("month")
            .annotate(n=Sum("incidents"))
            .values_list("month", "n")
        )
        record = {k: v or 0 for k, v in rows.aggregate(**{k: Sum(k) for k in outcomes}).items()}
    else:
        counts = (
            Incident.objects.for_operator(operator)
            .reported()
            .filter(submitted_at__gte=start)
            .annotate(month=TruncMonth("submitted_at"))
            .values_list("month")
            .annotate(n=Count("pk"))
            .values_list("month", "n")
        )
        record = Obligation.objects.filter(
            incident__operator=operator, incident__submitted_at__isnull=False
        ).aggregate(**summaries.outcome_counts(now))
    counts = {_month(month): n for month, n in counts}
    labels, cursor = [], start
    for _i in range(months):
        labels.append(cursor.strftime("%Y-%m"))
        cursor = (cursor + timedelta(days=32)).replace(day=1)
    per_month = Panel(
        key="my_incidents",
        title=_("Your incidents per month"),
        columns=[_("Month"), _("Incidents")],
        rows=[[label, counts.get(label, 0)] for label in labels],
        categories=labels,
        series={_("Incidents"): [counts.get(label, 0) for label in labels]},
        as_of=summary.refreshed_at if summary else None,
        live=summary is None,
    )
    return {"per_month": per_month, "record": record}


def register(site) -> None:
    """Serve the dashboard at <admin>/dashboard/ as `admin:dashboard`, behind the site's staff check."""
    site_urls = site.get_urls

    def get_urls():
        return [path("dashboard/", site.admin_view(dashboard_view), name="dashboard"), *site_urls()]

    site.get_urls = get_urls
