"""BSSN's dashboard: the country's incidents, deadlines, suspected cases and alert delivery at a glance.

Each panel is a small table of numbers (columns and rows) computed by one grouped query;
the page draws it as a server-rendered SVG chart (no script; colours come from CSS
classes, as the strict CSP wants) and shows the same numbers as an accessible table,
downloadable as CSV or XLSX.
"""

import csv
import io
import math
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import Count, F, Min, Q
from django.db.models.functions import TruncDate, TruncMonth, TruncWeek
from django.http import Http404, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from portal.accounts.models import Sector
from portal.regions import Province
from portal.spreadsheets import csv_cell

from .models import CLOSING_STATUSES, Category, Incident, Obligation, Severity, Status

DASHBOARD_PERM = "incidents.view_incident"
DEFAULT_WEEKS = 26
MAX_DAYS = 3 * 366
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

    @classmethod
    def from_form(cls, form: DashboardFilterForm) -> "Filters":
        data = form.cleaned_data
        zone = timezone.get_current_timezone()
        return cls(
            since=datetime.combine(data["since"], time.min, tzinfo=zone),
            until=datetime.combine(data["until"] + timedelta(days=1), time.min, tzinfo=zone),
            sector=data["sector"],
            province=data["province"],
        )

    def operators(self, prefix: str) -> Q:
        """Return the sector/province condition on the operator reached through `prefix`."""
        q = Q()
        if self.sector:
            q &= Q(**{f"{prefix}sector": self.sector})
        if self.province:
            q &= Q(**{f"{prefix}province": self.province})
        return q


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
    parts = []
    for tick in range(5):
        y = PAD_T + plot_h - plot_h * tick / 4
        parts.append(
            format_html(
                '<line class="chart-grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
                '<text class="chart-axis" x="{}" y="{}" text-anchor="end">{}</text>',
                PAD_L,
                CHART_W - 8,
                f"{y:.1f}",
                f"{y:.1f}",
                PAD_L - 4,
                f"{y + 4:.1f}",
                f"{top * tick / 4:g}",
            )
        )
    label_every = max(1, math.ceil(len(categories) / 12))
    for i, label in enumerate(categories):
        x = PAD_L + slot * i + (slot - bar_w) / 2
        base = PAD_T + plot_h
        for n, (name, values) in enumerate(series.items()):
            value = values[i]
            if not value:
                continue
            height = plot_h * value / top
            base -= height
            parts.append(
                format_html(
                    '<rect class="chart-s{}" x="{}" y="{}" width="{}" height="{}">'
                    "<title>{} · {}: {}{}</title></rect>",
                    n % 10,
                    f"{x:.1f}",
                    f"{base:.1f}",
                    f"{bar_w:.1f}",
                    f"{height:.1f}",
                    label,
                    name,
                    f"{value:g}",
                    unit,
                )
            )
        if i % label_every == 0:
            parts.append(
                format_html(
                    '<text class="chart-axis" x="{}" y="{}" text-anchor="middle">{}</text>',
                    f"{x + bar_w / 2:.1f}",
                    CHART_H - PAD_B + 14,
                    label,
                )
            )
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">'
        "{}</svg>",
        CHART_W,
        CHART_H,
        title,
        format_html_join("", "{}", ((part,) for part in parts)),
    )


# --- Panels -----------------------------------------------------------------------------------


def _label(choices, value) -> str:
    return str(dict(choices).get(value, value or "—"))


def _pivot(key: str, title: str, rows, *, x: str, group: str, choices, x_format) -> Panel:
    """Turn grouped rows {x, group, n} into a stacked panel with one series per group."""
    xs = sorted({r[x] for r in rows if r[x] is not None})
    groups = sorted({r[group] for r in rows})
    index = {value: i for i, value in enumerate(xs)}
    series = {_label(choices, g): [0] * len(xs) for g in groups}
    for r in rows:
        if r[x] is not None:
            series[_label(choices, r[group])][index[r[x]]] += r["n"]
    table = [
        [x_format(value), *(series[_label(choices, g)][i] for g in groups)] for i, value in enumerate(xs)
    ]
    return Panel(
        key=key,
        title=title,
        columns=[_("Period"), *(_label(choices, g) for g in groups)],
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
    column, choices = (
        ("operator__sector", Sector.choices) if by == "sector" else ("category", Category.choices)
    )
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
    now = now or timezone.now()
    open_incidents = (
        Incident.objects.reported()
        .filter(filters.operators("operator__"))
        .exclude(status__in=[*CLOSING_STATUSES, Status.RESOLVED])
    )
    counts = {}
    lower = None
    for days, label in AGE_BUCKETS:
        bucket = open_incidents
        if days is not None:
            bucket = bucket.filter(submitted_at__gt=now - timedelta(days=days))
        if lower is not None:
            bucket = bucket.filter(submitted_at__lte=now - timedelta(days=lower))
        lower = days
        for row in bucket.values("bssn_severity", "severity").annotate(n=Count("pk")).order_by():
            severity = row["bssn_severity"] or row["severity"] or ""
            counts[(label, severity)] = counts.get((label, severity), 0) + row["n"]
    severities = [*Severity.values, ""]
    labels = [label for _days, label in AGE_BUCKETS]
    series = {
        _label(Severity.choices, s) if s else _("Not assessed"): [
            counts.get((label, s), 0) for label in labels
        ]
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


def _percentile(values: list[float], p: float) -> float:
    if not values:
        return 0
    values = sorted(values)
    k = (len(values) - 1) * p
    f, c = math.floor(k), math.ceil(k)
    return values[f] + (values[c] - values[f]) * (k - f)


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


def time_to_triage_and_close(filters: Filters) -> Panel:
    columns = [_("Month"), _("Triage p50 (h)"), _("Triage p90 (h)"), _("Close p50 (h)"), _("Close p90 (h)")]
    if connection.vendor == "postgresql":
        return _durations_panel(_durations_in_sql(filters), columns)
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
    months = sorted(by_month)
    table = []
    for m in months:
        triage, close = by_month[m]
        table.append([m, *(round(_percentile(v, p), 1) for v in (triage, close) for p in (0.5, 0.9))])
    return _durations_panel(table, columns)


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
    rows = (
        Obligation.objects.filter(
            filters.operators("incident__operator__"),
            incident__submitted_at__isnull=False,
            due_at__gte=filters.since,
            due_at__lt=filters.until,
        )
        .annotate(month=TruncMonth("due_at"))
        .values("month", "incident__operator__sector", "rule__code")
        .annotate(
            on_time=Count("pk", filter=Q(met_at__isnull=False, met_at__lte=F("due_at"))),
            late=Count("pk", filter=Q(met_at__gt=F("due_at"))),
            missed=Count("pk", filter=Q(met_at__isnull=True, waived_at__isnull=True, due_at__lte=now)),
            waived=Count("pk", filter=Q(waived_at__isnull=False)),
        )
        .order_by("month", "incident__operator__sector", "rule__code")
    )
    outcomes = {"on_time": _("Met on time"), "late": _("Late"), "missed": _("Missed"), "waived": _("Waived")}
    table, per_month = [], {}
    for r in rows:
        month = _month(r["month"])
        table.append(
            [
                month,
                _label(Sector.choices, r["incident__operator__sector"]),
                r["rule__code"],
                *(r[k] for k in outcomes),
            ]
        )
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
    panel = _pivot(
        "epicurve",
        _("Suspected cases by onset week"),
        [{"week": r["week"], "group": r["classification"], "n": r["n"]} for r in rows],
        x="week",
        group="group",
        choices=Classification.choices,
        x_format=_week,
    )
    panel.columns = [_("Onset week"), _("Province"), _("Class"), _("Cases")]
    panel.rows = sorted(
        [
            _week(r["week"]),
            _label(Province.choices, r["province"]),
            _label(Classification.choices, r["classification"]),
            r["n"],
        ]
        for r in rows
    )
    return panel


def delivery_health(filters: Filters) -> Panel:
    from portal.alerts.models import Delivery, DeliveryStatus

    # Alerts to authorities: organisations' own webhook endpoints (authority null) are their business.
    deliveries = Delivery.objects.filter(
        created_at__gte=filters.since, created_at__lt=filters.until, authority__isnull=False
    )
    if filters.sector:
        deliveries = deliveries.filter(alert__sector=filters.sector)
    if filters.province:
        deliveries = deliveries.filter(alert__province=filters.province)
    rows = (
        deliveries.annotate(day=TruncDate("created_at"))
        .values("day", "status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    panel = _pivot(
        "delivery",
        _("Alert deliveries per day by outcome"),
        list(rows),
        x="day",
        group="status",
        choices=DeliveryStatus.choices,
        x_format=lambda d: d.isoformat(),
    )
    seconds = [
        (delivered - committed).total_seconds()
        for delivered, committed in deliveries.filter(status=DeliveryStatus.DELIVERED)
        .values_list("delivered_at", "alert__created_at")
        .iterator(chunk_size=5000)
    ]
    panel.p95_seconds = round(_percentile(seconds, 0.95), 1)
    panel.dead_by_authority = list(
        deliveries.filter(status=DeliveryStatus.DEAD)
        .values("authority__name")
        .annotate(n=Count("pk"))
        .order_by("-n", "authority__name")
    )
    return panel


def all_panels(filters: Filters) -> list[Panel]:
    return [
        incidents_per_week(filters, by="sector"),
        incidents_per_week(filters, by="category"),
        open_by_severity_and_age(filters),
        time_to_triage_and_close(filters),
        deadline_compliance(filters),
        epidemic_curve(filters),
        delivery_health(filters),
    ]


PANELS = {
    "weekly_sector": lambda f: incidents_per_week(f, by="sector"),
    "weekly_category": lambda f: incidents_per_week(f, by="category"),
    "open_age": open_by_severity_and_age,
    "durations": time_to_triage_and_close,
    "compliance": deadline_compliance,
    "epicurve": epidemic_curve,
    "delivery": delivery_health,
}


# --- Downloads and the page -----------------------------------------------------------------


def _csv(panel: Panel) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="dashboard-{panel.key}.csv"'
    writer = csv.writer(response)
    writer.writerow([csv_cell(c) for c in panel.columns])
    for row in panel.rows:
        writer.writerow([csv_cell(c) for c in row])
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
    filters = Filters.from_form(form)
    download = request.GET.get("download")
    if download:
        if download not in PANELS:
            raise Http404
        panel = PANELS[download](filters)
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
        "generated_at": timezone.now(),
    }
    return TemplateResponse(request, "admin/incidents/dashboard.html", context)


# --- The operator's own trends (organisation dashboard) ------------------------------------


def operator_trends(*, operator, months: int = 6, now=None) -> dict:
    """Return the organisation's submitted incidents per month and its deadline record, its own data only."""
    now = now or timezone.now()
    start = timezone.localtime(now).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for _i in range(months - 1):
        start = (start - timedelta(days=1)).replace(day=1)
    counts = dict(
        Incident.objects.for_operator(operator)
        .reported()
        .filter(submitted_at__gte=start)
        .annotate(month=TruncMonth("submitted_at"))
        .values_list("month")
        .annotate(n=Count("pk"))
        .values_list("month", "n")
    )
    counts = {_month(month): n for month, n in counts.items()}
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
    )
    record = Obligation.objects.filter(
        incident__operator=operator, incident__submitted_at__isnull=False
    ).aggregate(
        on_time=Count("pk", filter=Q(met_at__isnull=False, met_at__lte=F("due_at"))),
        late=Count("pk", filter=Q(met_at__gt=F("due_at"))),
        missed=Count("pk", filter=Q(met_at__isnull=True, waived_at__isnull=True, due_at__lte=now)),
        waived=Count("pk", filter=Q(waived_at__isnull=False)),
    )
    return {"per_month": per_month, "record": record}


def register(site) -> None:
    """Serve the dashboard at <admin>/dashboard/ as `admin:dashboard`, behind the site's staff check."""
    site_urls = site.get_urls

    def get_urls():
        return [path("dashboard/", site.admin_view(dashboard_view), name="dashboard"), *site_urls()]

    site.get_urls = get_urls
