from django.core.paginator import Paginator
from django.shortcuts import render

from portal.accounts.models import ADMIN_ROLES
from portal.accounts.tenancy import operator_view

from .models import AuditEvent


@operator_view(roles=ADMIN_ROLES)
def operator_log(request):
    """Show an operator admin their organisation's part of the audit log, newest first."""
    events = AuditEvent.objects.for_operator(request.operator).order_by("-created_at", "-seq")
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    return render(request, "audit/operator_log.html", {"page": page})
