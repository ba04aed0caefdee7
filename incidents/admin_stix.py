"""The admin action that exports a selection of incidents as a STIX 2.1 bundle."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from portal.audit.services import record

from .models import Incident
from .stix import build_bundle, check_clearance

MAX_EXPORT = 500


@admin.action(description=_("Export as STIX 2.1"), permissions=["view"])
def export_stix(modeladmin, request, queryset):
    """Download the selection as one bundle, or refuse it whole when any part is above the caller's TLP."""
    incidents = list(queryset.select_related("operator").prefetch_related("observables")[: MAX_EXPORT + 1])
    if len(incidents) > MAX_EXPORT:
        messages.error(
            request, gettext("Export at most %(count)d incidents at once.") % {"count": MAX_EXPORT}
        )
        return None
    try:
        check_clearance(user=request.user, incidents=incidents)
    except PermissionDenied as exc:
        messages.error(request, str(exc))
        return None
    bundle = build_bundle(incidents=incidents)
    record(
        action="incident.stix_export",
        actor=request.user,
        changes={"incidents": [i.reference for i in incidents], "bundle": bundle.id},
        request=request,
    )
    response = HttpResponse(bundle.serialize(), content_type="application/stix+json;version=2.1")
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="bssn-stix-{stamp}.json"'
    return response


def register() -> None:
    """Offer the action on the incident changelist, whatever else that admin offers."""
    model_admin = admin.site.get_model_admin(Incident)
    if export_stix not in model_admin.actions:
        model_admin.actions = [*model_admin.actions, export_stix]
