"""Operator-side views for organisations, members and invitations."""

import copy

from django.apps import apps
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from portal.audit.services import record

from . import services
from .forms import AcceptInvitationForm, InviteForm, OperatorProfileForm, RoleForm, TokenForm
from .models import ADMIN_ROLES, Invitation, Membership, User
from .tenancy import get_for_operator, operator_view


@login_required
def home(request):
    """Send the user to the organisation they used last, or their first one."""
    memberships = request.user.memberships.select_related("operator").order_by("operator__name")
    last = request.session.get("operator_slug")
    chosen = next((m for m in memberships if m.operator.slug == last), None) or memberships.first()
    if chosen is not None:
        return redirect(chosen.operator)
    if request.user.is_staff:
        return redirect("admin:index")
    return render(request, "accounts/no_organisation.html")


def _dashboard_panels(request) -> list[tuple[str, dict]]:
    """Collect panels that domain apps contribute (AppConfig.dashboard_panel, a dotted path)."""
    panels = []
    for config in apps.get_app_configs():
        path = getattr(config, "dashboard_panel", None)
        if path:
            panel = import_string(path)(request)
            if panel is not None:
                panels.append(panel)
    return panels


@operator_view
def dashboard(request):
    return render(request, "accounts/dashboard.html", {"panels": _dashboard_panels(request)})


@operator_view
def profile(request):
    form = None
    if request.membership.is_admin:
        # The form validates a copy, so the service still sees the old values to audit.
        form = OperatorProfileForm(request.POST or None, instance=copy.copy(request.operator))
        if request.method == "POST" and form.is_valid():
            services.update_operator_profile(
                operator=request.operator, actor=request.user, data=form.cleaned_data, request=request
            )
            messages.success(request, _("The organisation profile was saved."))
            return redirect("accounts:profile", operator_slug=request.operator.slug)
    return render(request, "accounts/profile.html", {"form": form})


@operator_view(roles=ADMIN_ROLES)
def members(request):
    operator = request.operator
    invite_form = InviteForm(request.POST or None)
    if request.method == "POST" and invite_form.is_valid():
        try:
            invitation = services.invite_member(
                operator=operator, actor=request.user, request=request, **invite_form.cleaned_data
            )
        except ValidationError as exc:
            invite_form.add_error("email", exc)
        else:
            messages.success(request, _("An invitation was sent to %(email)s.") % {"email": invitation.email})
            return redirect("accounts:members", operator_slug=operator.slug)
    context = {
        # API keys act through users of their own; they are managed on the API keys page.
        "memberships": operator.memberships.filter(user__api_key__isnull=True)
        .select_related("user")
        .order_by("user__email"),
        "invitations": Invitation.objects.filter(operator=operator).usable(),
        "invite_form": invite_form,
        "role_form": RoleForm(),
    }
    return render(request, "accounts/members.html", context)


@operator_view(roles=ADMIN_ROLES)
@require_POST
def member_role(request, membership_id: int):
    membership = get_for_operator(
        Membership.objects.select_related("user", "operator"), request.operator, pk=membership_id
    )
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a valid role."))
    else:
        try:
            services.change_role(
                membership=membership, actor=request.user, role=form.cleaned_data["role"], request=request
            )
            messages.success(request, _("The role was changed."))
        except ValidationError as exc:
            messages.error(request, exc.messages[0])
    return redirect("accounts:members", operator_slug=request.operator.slug)


@operator_view(roles=ADMIN_ROLES)
@require_POST
def member_remove(request, membership_id: int):
    membership = get_for_operator(
        Membership.objects.select_related("user", "operator"), request.operator, pk=membership_id
    )
    try:
        services.remove_member(membership=membership, actor=request.user, request=request)
        messages.success(request, _("%(email)s was removed.") % {"email": membership.user.email})
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    return redirect("accounts:members", operator_slug=request.operator.slug)


def accept_invitation(request, token: str):
    """Join an organisation from an invitation link (single use, expiring)."""
    try:
        invitation = services.find_invitation(token)
    except services.InvitationInvalid:
        return render(request, "accounts/invitation_invalid.html", status=410)

    if request.user.is_authenticated:
        if request.user.email.lower() != invitation.email.lower():
            return render(
                request, "accounts/invitation_wrong_account.html", {"invitation": invitation}, status=403
            )
        if request.method == "POST":
            try:
                membership = services.accept_invitation(token=token, user=request.user, request=request)
            except services.InvitationInvalid:
                return render(request, "accounts/invitation_invalid.html", status=410)
            messages.success(request, _("You joined %(operator)s.") % {"operator": membership.operator.name})
            return redirect(membership.operator)
        return render(request, "accounts/invitation_accept.html", {"invitation": invitation})

    if User.objects.filter(email__iexact=invitation.email).exists():
        # The addressee already has an account: sign in first, then come back here.
        login_url = reverse("accounts:login") + "?next=" + request.path
        return render(
            request, "accounts/invitation_accept.html", {"invitation": invitation, "login_url": login_url}
        )
    form = AcceptInvitationForm(request.POST or None, email=invitation.email)
    if request.method == "POST" and form.is_valid():
        try:
            membership = services.accept_invitation(
                token=token,
                full_name=form.cleaned_data["full_name"],
                password=form.cleaned_data["password1"],
                request=request,
            )
        except services.InvitationInvalid:
            return render(request, "accounts/invitation_invalid.html", status=410)
        login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(
            request, _("Welcome! You joined %(operator)s.") % {"operator": membership.operator.name}
        )
        return redirect(membership.operator)
    return render(request, "accounts/invitation_accept.html", {"invitation": invitation, "form": form})


def _safe_next(request, default: str) -> str:
    from django.utils.http import url_has_allowed_host_and_scheme

    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


@login_required
def two_factor_verify(request):
    """Second sign-in step: a TOTP code or a recovery code."""
    from django_otp import login as otp_login
    from django_otp import match_token

    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = match_token(request.user, form.cleaned_data["token"])
        if device is not None:
            otp_login(request, device)
            record(
                action="auth.two_factor_verified",
                actor=request.user,
                request=request,
                changes={"device": device.__class__.__name__},
            )
            return redirect(_safe_next(request, reverse("accounts:home")))
        record(action="auth.two_factor_failed", actor=request.user, request=request)
        form.add_error("token", _("This code is not valid. Check the time on your phone and try again."))
    return render(request, "accounts/two_factor_verify.html", {"form": form, "next": _safe_next(request, "")})


@login_required
def two_factor_setup(request):
    """Set up (or replace) the TOTP device; show recovery codes once."""
    from . import two_factor

    if request.user.is_verified() is False and two_factor.has_confirmed_device(request.user):
        return redirect(reverse("accounts:two_factor_verify") + "?next=" + request.path)
    device = two_factor.pending_totp_device(request.user)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        codes = two_factor.confirm_totp(user=request.user, device=device, token=form.cleaned_data["token"])
        if codes is not None:
            from django_otp import login as otp_login

            otp_login(request, device)
            record(action="auth.two_factor_enabled", actor=request.user, request=request)
            return render(
                request,
                "accounts/two_factor_codes.html",
                {"codes": codes, "next": _safe_next(request, reverse("accounts:home"))},
            )
        form.add_error("token", _("This code is not valid. Check the time on your phone and try again."))
    context = {
        "form": form,
        "qr_svg": two_factor.qr_svg(device),
        "secret": two_factor.secret_base32(device),
        "required": two_factor.two_factor_required(request.user),
        "enabled": two_factor.has_confirmed_device(request.user),
        "next": _safe_next(request, ""),
    }
    return render(request, "accounts/two_factor_setup.html", context)
