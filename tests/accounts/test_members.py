from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from portal.accounts.models import Invitation, Membership, Role, User
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _members_url(operator):
    return reverse("accounts:members", kwargs={"operator_slug": operator.slug})


def _invite(client, operator, email="new.person@example.org", role=Role.REPORTER):
    return client.post(_members_url(operator), {"email": email, "role": role})


def _link_from(mail) -> str:
    line = next(line for line in mail.body.splitlines() if "/invitation/" in line)
    return "/" + line.split("://", 1)[1].split("/", 1)[1]


def test_admin_invites_and_the_link_creates_a_member(
    client_for, client, op_admin, operator, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _invite(client_for(op_admin), operator)
    assert len(mailoutbox) == 1
    link = _link_from(mailoutbox[0])
    response = client.post(link, {"full_name": "New Person", "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302
    user = User.objects.get(email="new.person@example.org")
    assert Membership.objects.get(user=user, operator=operator).role == Role.REPORTER
    # The stored token is a hash: the link's token is not in the database.
    assert link.rstrip("/").rsplit("/", 1)[1] not in Invitation.objects.values_list("token_hash", flat=True)


def test_a_used_invitation_link_is_refused(
    client_for, client, op_admin, operator, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _invite(client_for(op_admin), operator)
    link = _link_from(mailoutbox[0])
    client.post(link, {"full_name": "New Person", "password1": PASSWORD, "password2": PASSWORD})
    client.logout()
    response = client.post(link, {"full_name": "Someone Else", "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 410
    assert User.objects.filter(email="new.person@example.org").count() == 1


def test_an_expired_invitation_link_is_refused(
    client_for, client, op_admin, operator, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _invite(client_for(op_admin), operator)
    Invitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    response = client.post(
        _link_from(mailoutbox[0]), {"full_name": "Late", "password1": PASSWORD, "password2": PASSWORD}
    )
    assert response.status_code == 410
    assert "no longer valid" in response.content.decode() or "tidak berlaku" in response.content.decode()
    assert not User.objects.filter(email="new.person@example.org").exists()


def test_weak_password_on_invitation_is_refused_and_nothing_is_saved(
    client_for, client, op_admin, operator, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _invite(client_for(op_admin), operator)
    response = client.post(
        _link_from(mailoutbox[0]), {"full_name": "X", "password1": "123", "password2": "123"}
    )
    assert response.status_code == 200
    assert not User.objects.filter(email="new.person@example.org").exists()
    assert Invitation.objects.get().accepted_at is None


def test_existing_user_accepts_after_signing_in(
    client_for, op_admin, operator, outsider, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _invite(client_for(op_admin), operator, email=outsider.email, role=Role.VIEWER)
    c = client_for(outsider)
    c.post(_link_from(mailoutbox[0]))
    assert Membership.objects.get(user=outsider, operator=operator).role == Role.VIEWER


def test_reporter_cannot_manage_members(client_for, reporter, operator):
    c = client_for(reporter)
    assert c.get(_members_url(operator)).status_code == 403
    assert _invite(c, operator).status_code == 403
    assert not Invitation.objects.exists()


def test_admin_changes_a_role_and_removes_a_member(client_for, op_admin, viewer, operator):
    c = client_for(op_admin)
    membership = Membership.objects.get(user=viewer)
    c.post(
        reverse(
            "accounts:member_role", kwargs={"operator_slug": operator.slug, "membership_id": membership.pk}
        ),
        {"role": Role.REPORTER},
    )
    membership.refresh_from_db()
    assert membership.role == Role.REPORTER
    c.post(
        reverse(
            "accounts:member_remove", kwargs={"operator_slug": operator.slug, "membership_id": membership.pk}
        )
    )
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_the_last_admin_cannot_be_demoted(client_for, op_admin, operator):
    membership = Membership.objects.get(user=op_admin)
    response = client_for(op_admin).post(
        reverse(
            "accounts:member_role", kwargs={"operator_slug": operator.slug, "membership_id": membership.pk}
        ),
        {"role": Role.VIEWER},
        follow=True,
    )
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN
    assert (
        "administrator" in response.content.decode() or "administrator" in response.content.decode().lower()
    )


def test_admin_cannot_touch_another_organisations_member(client_for, op_admin, outsider):
    other = Membership.objects.get(user=outsider)
    response = client_for(op_admin).post(
        reverse(
            "accounts:member_remove",
            kwargs={"operator_slug": op_admin.memberships.get().operator.slug, "membership_id": other.pk},
        )
    )
    assert response.status_code == 404
    assert Membership.objects.filter(pk=other.pk).exists()
