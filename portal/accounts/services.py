"""Multi-step writes for organisations and their members."""

import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from portal.alerts.outbox import EMAIL_QUEUE, publish
from portal.audit.services import record
from portal.audit.updates import update_and_audit

from .models import Invitation, Membership, Operator, PasswordResetRequest, Role, User

logger = logging.getLogger(__name__)

PROFILE_FIELDS = ("name", "pse_registration_number", "timezone", "province", "contact_email", "contact_phone")


def update_operator_profile(*, operator: Operator, actor: User, data: dict, request=None) -> Operator:
    """Save the editable profile fields and audit old and new values (phone masked)."""
    fields = [*PROFILE_FIELDS, "require_two_factor"]
    update_and_audit(
        instance=operator,
        data=data,
        fields=fields,
        action="operator.update",
        actor=actor,
        operator=operator,
        request=request,
        shown=lambda field, value: "***" if field == "contact_phone" else value,
    )
    return operator


def _send_invitation_email(invitation: Invitation, token: str, language: str) -> None:
    url = settings.SITE_URL.rstrip("/") + reverse("accounts:accept_invitation", args=[token])
    with translation.override(language):
        context = {"invitation": invitation, "url": url, "ttl_hours": settings.INVITATION_TTL_HOURS}
        subject = _("Invitation to join %(operator)s on the incident reporting portal") % {
            "operator": invitation.operator.name
        }
        message = EmailMultiAlternatives(
            subject=subject,
            body=render_to_string("emails/invitation.txt", context),
            to=[invitation.email],
        )
        message.attach_alternative(render_to_string("emails/invitation.html", context), "text/html")
    message.send()


def invite_member(*, operator: Operator, actor: User, email: str, role: str, request=None) -> Invitation:
    """Create a single-use invitation and e-mail its link once the transaction commits."""
    email = email.strip().lower()
    if Membership.objects.filter(operator=operator, user__email__iexact=email).exists():
        raise ValidationError(_("This person is already a member of the organisation."))
    token, token_hash = Invitation.new_token()
    language = translation.get_language() or settings.LANGUAGE_CODE
    with transaction.atomic():
        # A new invitation replaces any earlier, still usable one for the same address.
        Invitation.objects.usable().filter(operator=operator, email__iexact=email).update(
            revoked_at=timezone.now()
        )
        invitation = Invitation.objects.create(
            operator=operator,
            email=email,
            role=role,
            token_hash=token_hash,
            invited_by=actor,
            expires_at=Invitation.default_expiry(),
        )
        record(
            action="membership.invite",
            actor=actor,
            operator=operator,
            target=invitation,
            changes={"role": role},
            request=request,
        )
        transaction.on_commit(lambda: _send_invitation_email(invitation, token, language))
    return invitation


class InvitationInvalid(Exception):
    """The link is unknown, expired, revoked or already used."""


def find_invitation(token: str) -> Invitation:
    """Return the usable invitation for `token`, or raise InvitationInvalid."""
    invitation = (
        Invitation.objects.select_related("operator").filter(token_hash=Invitation.hash_token(token)).first()
    )
    if invitation is None or not invitation.is_usable:
        raise InvitationInvalid
    return invitation


def accept_invitation(
    *, token: str, user: User | None = None, full_name: str = "", password: str = "", request=None
) -> Membership:
    """Consume the invitation and make its addressee a member.

    Either `user` (signed in with the invited address) or `full_name` and `password`
    for a new account. The conditional update consumes the token exactly once.
    """
    with transaction.atomic():
        invitation = find_invitation(token)
        consumed = Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True).update(
            accepted_at=timezone.now()
        )
        if not consumed:
            raise InvitationInvalid
        if user is None:
            if User.objects.filter(email__iexact=invitation.email).exists():
                raise InvitationInvalid
            user = User.objects.create_user(invitation.email, password, full_name=full_name)
        elif user.email.lower() != invitation.email.lower():
            raise InvitationInvalid
        membership, _created = Membership.objects.get_or_create(
            user=user, operator=invitation.operator, defaults={"role": invitation.role}
        )
        record(
            action="membership.join",
            actor=user,
            operator=invitation.operator,
            target=membership,
            changes={"role": membership.role},
            request=request,
        )
    return membership


def _other_admins(membership: Membership) -> bool:
    return (
        Membership.objects.filter(operator=membership.operator, role=Role.ADMIN)
        .exclude(pk=membership.pk)
        .exists()
    )


def change_role(*, membership: Membership, actor: User, role: str, request=None) -> Membership:
    """Change a member's role; an organisation always keeps at least one admin."""
    if role == membership.role:
        return membership
    if membership.role == Role.ADMIN and not _other_admins(membership):
        raise ValidationError(_("The organisation must keep at least one administrator."))
    with transaction.atomic():
        old = membership.role
        membership.role = role
        membership.save(update_fields=["role"])
        record(
            action="membership.change_role",
            actor=actor,
            operator=membership.operator,
            target=membership,
            changes={"role": {"old": old, "new": role}},
            request=request,
        )
    return membership


def remove_member(*, membership: Membership, actor: User, request=None) -> None:
    """Remove a member; the last admin cannot be removed."""
    if membership.role == Role.ADMIN and not _other_admins(membership):
        raise ValidationError(_("The organisation must keep at least one administrator."))
    with transaction.atomic():
        record(
            action="membership.remove",
            actor=actor,
            operator=membership.operator,
            target=membership,
            changes={"role": membership.role},
            request=request,
        )
        membership.delete()


# --- Password reset -------------------------------------------------------------
# The reset page answers in the same time for any address: the request only records
# it and enqueues its id; a worker looks the account up and sends the link.

PASSWORD_RESET_TEMPLATES = {
    "subject": "emails/password_reset_subject.txt",
    "text": "emails/password_reset.txt",
    "html": "emails/password_reset.html",
}


def password_reset_request(*, email: str, language: str) -> PasswordResetRequest:
    """Record a reset request for `email` and enqueue its answer after commit.

    Does the same database and queue work whether or not an account has the address.
    """
    with transaction.atomic():
        reset_request = PasswordResetRequest.objects.create(email=email.strip()[:254], language=language)
        transaction.on_commit(lambda: enqueue_password_reset(request_id=reset_request.pk), robust=True)
    return reset_request


RESET_SEND_TASK = "portal.accounts.tasks.send_password_reset_task"


def enqueue_password_reset(*, request_id: int) -> int:
    """Publish the task that answers one reset request; return 1 if it was published."""
    # Published by name on the e-mail queue: services never import tasks (tasks are the top layer).
    return publish(RESET_SEND_TASK, [request_id], queue=EMAIL_QUEUE, what="password reset")


def password_reset_send(*, request_id: int) -> int:
    """Answer one reset request: queue a link to each active account with the address.

    Return how many e-mails were queued (0 for an unknown address). The request row is
    deleted in the same transaction, so a task run twice sends nothing the second time.
    """
    from django.contrib.auth.forms import PasswordResetForm
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    from portal.alerts.notices import queue_email

    site = urlsplit(settings.SITE_URL)
    sent = 0
    with transaction.atomic():
        reset_request = PasswordResetRequest.objects.select_for_update().filter(pk=request_id).first()
        if reset_request is None:
            return 0  # answered already
        email, language = reset_request.email, reset_request.language
        reset_request.delete()
        for user in PasswordResetForm().get_users(email):
            context = {
                "email": user.email,
                "domain": site.netloc,
                "site_name": site.netloc,
                "protocol": site.scheme,
                "uid": urlsafe_base64_encode(force_bytes(user.pk)),
                "user": user,
                "token": default_token_generator.make_token(user),
            }
            with translation.override(language):
                subject = "".join(render_to_string(PASSWORD_RESET_TEMPLATES["subject"], context).splitlines())
                message = EmailMultiAlternatives(
                    subject=subject,
                    body=render_to_string(PASSWORD_RESET_TEMPLATES["text"], context),
                    to=[user.email],
                )
                message.attach_alternative(
                    render_to_string(PASSWORD_RESET_TEMPLATES["html"], context), "text/html"
                )
            queue_email(message, template="accounts/password_reset")
            sent += 1
    return sent
