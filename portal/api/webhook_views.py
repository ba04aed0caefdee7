"""The organisation admin's pages for its own webhook endpoints (BSSN's doings sent back to it).

Beside the API keys: register, edit, disable and enable, rotate the secret (shown
once), send a test event, resend a failed event, delete. Each action is one service
of portal/alerts/operator_webhooks.py, audited there.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from portal.accounts.models import ADMIN_ROLES
from portal.accounts.tenancy import get_for_operator, operator_view
from portal.alerts import operator_webhooks
from portal.alerts.models import Channel, Delivery, DeliveryStatus

from .forms import WebhookEnableForm, WebhookEndpointForm

RECENT_DELIVERIES = 25


def _form_errors(form, exc: ValidationError) -> None:
    """Show a service's refusal on the form: on its field where there is one, else above it."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


def _no_store(response):
    response["Cache-Control"] = "no-store"  # the page may carry a secret shown once
    return response


def _endpoint(request, endpoint_id: int) -> Channel:
    return get_for_operator(Channel, request.operator, pk=endpoint_id)


def _back(endpoint: Channel):
    return redirect("webhooks:detail", operator_slug=endpoint.operator.slug, endpoint_id=endpoint.pk)


@operator_view(roles=ADMIN_ROLES)
def endpoint_list(request):
    form = WebhookEndpointForm(request.POST or None)
    created = secret = None
    if request.method == "POST" and form.is_valid():
        try:
            created, secret = operator_webhooks.endpoint_create(
                operator=request.operator, actor=request.user, request=request, **form.cleaned_data
            )
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            form = WebhookEndpointForm()
    endpoints = Channel.objects.for_operator(request.operator).order_by("name", "pk")
    return _no_store(
        render(
            request,
            "api/webhooks.html",
            {"endpoints": endpoints, "form": form, "created": created, "secret": secret},
        )
    )


def _detail(request, endpoint: Channel, form=None, *, secret: str | None = None, status: int = 200):
    deliveries = (
        Delivery.objects.filter(channel=endpoint).select_related("alert").order_by("-pk")[:RECENT_DELIVERIES]
    )
    context = {
        "endpoint": endpoint,
        "form": form
        or WebhookEndpointForm(
            initial={"name": endpoint.name, "url": endpoint.url, "event_types": endpoint.event_types}
        ),
        "enable_form": WebhookEnableForm(),
        "held": endpoint.deliveries.filter(status=DeliveryStatus.HELD).count(),
        "deliveries": deliveries,
        "secret": secret,
        "disabled_by_organisation": endpoint.disabled_reason == operator_webhooks.DISABLED_BY_ORGANISATION,
    }
    return _no_store(render(request, "api/webhook_detail.html", context, status=status))


@operator_view(roles=ADMIN_ROLES)
def endpoint_detail(request, endpoint_id: int):
    endpoint = _endpoint(request, endpoint_id)
    if request.method != "POST":
        return _detail(request, endpoint)
    form = WebhookEndpointForm(request.POST)
    if form.is_valid():
        try:
            changes = operator_webhooks.endpoint_update(
                endpoint=endpoint, actor=request.user, data=form.cleaned_data, request=request
            )
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            if changes:
                messages.success(request, _("The endpoint was saved."))
            return _back(endpoint)
    return _detail(request, endpoint, form)


@operator_view(roles=ADMIN_ROLES)
@require_POST
def endpoint_rotate(request, endpoint_id: int):
    endpoint = _endpoint(request, endpoint_id)
    secret = operator_webhooks.endpoint_rotate_secret(endpoint=endpoint, actor=request.user, request=request)
    return _detail(request, endpoint, secret=secret)


@operator_view(roles=ADMIN_ROLES)
@require_POST
def endpoint_test(request, endpoint_id: int):
    endpoint = _endpoint(request, endpoint_id)
    try:
        alert = operator_webhooks.endpoint_send_test(endpoint=endpoint, actor=request.user, request=request)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request,
            _("A test event (%(id)s) is on its way; its outcome appears below.") % {"id": alert.webhook_id},
        )
    return _back(endpoint)


@operator_view(roles=ADMIN_ROLES)
@require_POST
def endpoint_disable(request, endpoint_id: int):
    endpoint = _endpoint(request, endpoint_id)
    if operator_webhooks.endpoint_disable(endpoint=endpoint, actor=request.user, request=request):
        messages.success(request, _("The endpoint is disabled; new events wait until you enable it again."))
    return _back(endpoint)


@operator_view(roles=ADMIN_ROLES)
@require_POST
def endpoint_enable(request, endpoint_id: int):
    endpoint = _endpoint(request, endpoint_id)
    form = WebhookEnableForm(request.POST)
    release = not form.is_valid() or form.cleaned_data["held"] != "discard"
    count = operator_webhooks.endpoint_enable(
        endpoint=endpoint, actor=request.user, release=release, request=request
    )
    if release:
        text = ngettext(
            "The endpoint is enabled; %(n)d event that waited is on its way.",
            "The endpoint is enabled; %(n)d events that waited are on their way.",
            count,
        )
    else:
        text = ngettext(
            "The endpoint is enabled; %(n)d event that waited was discarded.",
            "The endpoint is enabled; %(n)d events that waited were discarded.",
            count,
        )
    messages.success(request, text % {"n": count})
    return _back(endpoint)


@operator_view(roles=ADMIN_ROLES)
@require_POST
def delivery_resend(request, endpoint_id: int, delivery_id: int):
    endpoint = _endpoint(request, endpoint_id)
    delivery = get_object_or_404(Delivery.objects.select_related("alert"), pk=delivery_id, channel=endpoint)
    operator_webhooks.endpoint_resend(delivery=delivery, actor=request.user, request=request)
    messages.success(request, _("The event is on its way again."))
    return _back(endpoint)


@operator_view(roles=ADMIN_ROLES)
@require_POST
def endpoint_delete(request, endpoint_id: int):
    endpoint = _endpoint(request, endpoint_id)
    try:
        operator_webhooks.endpoint_delete(endpoint=endpoint, actor=request.user, request=request)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return _back(endpoint)
    messages.success(request, _("The endpoint “%(name)s” was deleted.") % {"name": endpoint.name})
    return redirect("webhooks:list", operator_slug=request.operator.slug)
