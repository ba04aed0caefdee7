import pytest
from django.urls import reverse

from portal.audit.models import AuditEvent
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_sign_in_lands_on_the_organisation_dashboard(client, reporter, operator):
    response = client.post(
        reverse("accounts:login"), {"username": reporter.email, "password": PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0] == operator.get_absolute_url()
    assert operator.name in response.content.decode()
    assert AuditEvent.objects.filter(action="auth.login", actor=reporter).exists()


def test_wrong_password_is_refused_and_audited_without_the_address(client, reporter):
    response = client.post(reverse("accounts:login"), {"username": reporter.email, "password": "nope"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    event = AuditEvent.objects.get(action="auth.login_failed")
    assert reporter.email not in str(event.changes)
    assert len(event.changes["email_index"]) == 64


def test_sign_out_ends_the_session(client_for, reporter, operator):
    c = client_for(reporter)
    c.post(reverse("accounts:logout"))
    response = c.get(operator.get_absolute_url())
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_anonymous_dashboard_redirects_to_sign_in(client, operator):
    response = client.get(operator.get_absolute_url())
    assert response.status_code == 302 and reverse("accounts:login") in response["Location"]


def test_user_with_two_organisations_switches_between_them(client_for, reporter, operator, other_operator):
    from portal.accounts.models import Membership, Role

    Membership.objects.create(user=reporter, operator=other_operator, role=Role.VIEWER)
    c = client_for(reporter)
    page = c.get(operator.get_absolute_url()).content.decode()
    assert other_operator.get_absolute_url() in page  # the switcher links to the other one
    assert c.get(other_operator.get_absolute_url()).status_code == 200
    # Home remembers the organisation used last.
    assert c.get(reverse("accounts:home"))["Location"] == other_operator.get_absolute_url()


def test_interface_speaks_indonesian_by_default_and_english_on_request(client):
    assert "Masuk" in client.get(reverse("accounts:login")).content.decode()
    client.post(reverse("set_language"), {"language": "en", "next": "/login/"})
    assert "Sign in" in client.get(reverse("accounts:login")).content.decode()
