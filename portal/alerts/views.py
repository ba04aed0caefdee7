"""The operator's view of the alert pipeline: what was sent about their organisation, to whom."""

from datetime import timedelta

from django.core.paginator import Paginator
from django.db.models import Count, Prefetch, Q
from django.shortcuts import render
from django.utils import timezone

from portal.accounts.tenancy import operator_view

from .forms import AlertFilterForm
from .models import Alert, Delivery, DeliveryStatus
from .transports import _flatten

PAGE_SIZE = 25


@operator_view
def alert_list(request):
    form = AlertFilterForm(request.GET or None)
    alerts = (
        Alert.objects.for_operator(request.operator)
        .to_authorities()
        .prefetch_related(
            Prefetch(
                "deliveries",
                queryset=Delivery.objects.select_related("authority").order_by("authority__name"),
            )
        )
    )
    if form.is_valid() and form.cleaned_data["event_type"]:
        alerts = alerts.filter(event_type=form.cleaned_data["event_type"])
    page = Paginator(alerts, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {
            "alert": alert,
            "fields": [key for key, _value in _flatten(alert.payload) if key != "schema"],
            "recipients": _recipients(alert),
        }
        for alert in page
    ]
    return render(request, "alerts/alert_list.html", {"form": form, "page": page, "rows": rows})


def _recipients(alert: Alert) -> list[dict]:
    """One row per authority: its name and the best status over its channels (no addresses)."""
    rank = {
        DeliveryStatus.DELIVERED: 3,
        DeliveryStatus.PENDING: 2,
        DeliveryStatus.SENDING: 2,
        DeliveryStatus.DEAD: 1,
    }
    by_authority: dict[int, dict] = {}
    for delivery in alert.deliveries.all():
        row = by_authority.setdefault(
            delivery.authority_id, {"name": delivery.authority.name, "status": None}
        )
        # Held (the authority's channel is disabled) is BSSN's business: the operator sees it pending.
        status = DeliveryStatus.PENDING if delivery.status == DeliveryStatus.HELD else delivery.status
        if row["status"] is None or rank[status] > rank[row["status"]]:
            row["status"] = status
    for row in by_authority.values():
        row["label"] = DeliveryStatus(row["status"]).label
        # "sending" is an internal step; the operator sees it as pending.
        row["state"] = {"delivered": "ok", "dead": "danger"}.get(row["status"], "warn")
    return list(by_authority.values())


def dashboard_panel(request):
    """Return the dashboard card: alerts sent about this organisation in the last 30 days."""
    operator = getattr(request, "operator", None)
    if operator is None:
        return None
    since = timezone.now() - timedelta(days=30)
    counts = (
        Alert.objects.for_operator(operator)
        .to_authorities()
        .filter(created_at__gte=since)
        .aggregate(
            total=Count("pk"),
            undelivered=Count("pk", filter=Q(deliveries__status=DeliveryStatus.DEAD), distinct=True),
        )
    )
    return "alerts/_dashboard_panel.html", {"total": counts["total"], "undelivered": counts["undelivered"]}
