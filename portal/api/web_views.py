"""The organisation admin's page for API keys: create (secret shown once), list, revoke."""

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from portal.accounts.models import ADMIN_ROLES
from portal.accounts.tenancy import get_for_operator, operator_view

from .forms import ApiKeyForm
from .keys import api_key_create, api_key_revoke
from .models import ApiKey


@operator_view(roles=ADMIN_ROLES)
def key_list(request):
    form = ApiKeyForm(request.POST or None)
    secret = None
    if request.method == "POST" and form.is_valid():
        try:
            key, secret = api_key_create(
                operator=request.operator,
                actor=request.user,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                expires_at=timezone.now() + timedelta(days=form.cleaned_data["expires_in_days"]),
                request=request,
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            form = ApiKeyForm()
    response = render(
        request,
        "api/keys.html",
        {
            "keys": ApiKey.objects.for_operator(request.operator).select_related("created_by"),
            "form": form,
            "secret": secret,
            "now": timezone.now(),
        },
    )
    response["Cache-Control"] = "no-store"  # the page may carry a secret shown once
    return response


@operator_view(roles=ADMIN_ROLES)
@require_POST
def key_revoke(request, key_id: int):
    key = get_for_operator(ApiKey, request.operator, pk=key_id)
    api_key_revoke(key=key, actor=request.user, request=request)
    messages.success(request, _("The key “%(name)s” was revoked.") % {"name": key.name})
    return redirect("api_keys:list", operator_slug=request.operator.slug)
