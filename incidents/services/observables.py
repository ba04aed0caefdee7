"""Observables: attach normalised indicators to an incident, and correlate them across operators."""

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Exists, Max, OuterRef, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.accounts.models import User
from portal.audit.services import record

from ..models import TLP, Incident, Observable, Status
from ..observables import ObservableKind, normalise
from ..permissions import TRIAGE, require_perm, require_writer
from .base import TransitionRefused

CORRELATION_WINDOW = timedelta(days=30)


def attach_observables(
    *,
    incident: Incident,
    actor: User,
    entries: list[tuple[str, str]],
    tlp: str,
    note: str = "",
    by_bssn: bool = False,
    request=None,
) -> list[Observable]:
    """Attach (kind, value) pairs to `incident`, all or none; return those new to it.

    Values are normalised again here, so a caller cannot store a second spelling.
    """
    if by_bssn:
        require_perm(actor, TRIAGE)
    else:
        require_writer(actor, incident.operator)
        if incident.is_closed:
            raise TransitionRefused(_("This incident is closed; no more observables can be added."))
    if tlp not in TLP.values:
        raise ValidationError(_("Choose a valid TLP."))
    clean = []
    for kind, value in entries:
        if kind not in ObservableKind.values:
            raise ValidationError(_("Unknown kind of observable."))
        clean.append((kind, normalise(kind, value)))
    with transaction.atomic():
        existing = set(incident.observables.values_list("kind", "value"))
        new = [
            Observable(
                incident=incident,
                operator_id=incident.operator_id,
                kind=kind,
                value=value,
                tlp=tlp,
                note=note[:300],
                added_by=actor,
                added_by_bssn=by_bssn,
            )
            for kind, value in dict.fromkeys(clean)
            if (kind, value) not in existing
        ]
        Observable.objects.bulk_create(new)
        if new:
            record(
                action="observable.attach",
                actor=actor,
                operator=incident.operator,
                target=incident,
                changes={
                    "count": len(new),
                    "kinds": sorted({o.kind for o in new}),
                    "tlp": tlp,
                    "by_bssn": by_bssn,
                },
                request=request,
            )
    return new


def _reported() -> QuerySet:
    return Observable.objects.exclude(incident__status=Status.DRAFT)


def incidents_sharing(*, observable: Observable, limit: int = 200) -> QuerySet:
    """Return the other reported incidents (any operator) that carry the same indicator: BSSN's view.

    The ids are read first, from the (kind, value) index: as a subquery, the planner may
    walk every incident newest first looking for the few that match.
    """
    ids = list(
        _reported()
        .filter(kind=observable.kind, value=observable.value)
        .exclude(incident_id=observable.incident_id)
        .order_by("-created_at")
        .values_list("incident_id", flat=True)[:limit]
    )
    return Incident.objects.filter(pk__in=ids).select_related("operator").order_by("-created_at")


def reported_elsewhere(*, incident: Incident) -> set[int]:
    """Return the ids of `incident`'s observables that another organisation also reported as CLEAR or GREEN.

    Only the fact is told, never which organisation nor which incident. Each indicator is
    one probe of the (kind, value) index that stops at the first match, however many
    organisations reported it (a phishing domain may be at hundreds).
    """
    elsewhere = (
        _reported()
        .shareable()
        .filter(kind=OuterRef("kind"), value=OuterRef("value"))
        .exclude(operator_id=incident.operator_id)
    )
    return set(incident.observables.filter(Exists(elsewhere)).values_list("id", flat=True))


def shared_in_window(queryset: QuerySet, *, now=None, window: timedelta = CORRELATION_WINDOW) -> QuerySet:
    """Narrow observables to those of the window whose indicator another organisation reported in it too.

    Each row is checked against the (kind, value, created_at, operator) index alone, newest
    first, so a page needs only as many checks as it takes to fill it.
    """
    since = (now or timezone.now()) - window
    elsewhere = Observable.objects.filter(
        kind=OuterRef("kind"), value=OuterRef("value"), created_at__gte=since
    ).exclude(operator_id=OuterRef("operator_id"))
    return queryset.filter(created_at__gte=since).filter(Exists(elsewhere))


def shared_across_operators(*, now=None, window: timedelta = CORRELATION_WINDOW) -> QuerySet:
    """Return (kind, value, operators, incidents, last_seen) of indicators seen at two or more operators."""
    since = (now or timezone.now()) - window
    return (
        _reported()
        .filter(created_at__gte=since)
        .values("kind", "value")
        .annotate(
            operators=Count("operator_id", distinct=True),
            incidents=Count("incident_id", distinct=True),
            last_seen=Max("created_at"),
        )
        .filter(operators__gte=2)
        .order_by("-operators", "-last_seen")
    )
