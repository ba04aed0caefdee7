"""How people reach the BSSN admin: the staff link, operators turned away clearly, view-on-site."""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from incidents.models import Incident
from tests.incidents.conftest import staff_client
from tests.incidents.helpers import file_incident

pytestmark = pytest.mark.django_db


def test_the_sign_in_page_shows_staff_the_way_in(client):
    page = client.get(reverse("accounts:login")).content.decode()
    staff_link = reverse("accounts:login") + "?next=" + reverse("admin:index")
    assert f'href="{staff_link}"' in page
    staff_page = client.get(staff_link).content.decode()
    assert 'id="staff-sign-in"' not in staff_page
    assert 'name="next" value="/admin/"' in staff_page


def test_anonymous_visitors_of_the_admin_are_sent_to_sign_in(client):
    response = client.get("/admin/", follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("accounts:login"))
    assert response.status_code == 200


def test_a_signed_in_operator_gets_a_clear_refusal_not_a_redirect_loop(client_for, reporter):
    client = client_for(reporter)
    response = client.get("/admin/", follow=True)
    assert len(response.redirect_chain) <= 2
    assert response.status_code == 403
    page = response.content.decode()
    assert reporter.email in page
    assert f'href="{reverse("accounts:home")}"' in page
    # Signing in again from the staff link ends at the same page, not in a loop.
    again = client.get(reverse("accounts:login") + "?next=/admin/", follow=True)
    assert again.status_code == 403 and len(again.redirect_chain) <= 3


def _view_on_site(obj) -> str:
    content_type = ContentType.objects.get_for_model(obj)
    return reverse("admin:view_on_site", args=[content_type.pk, obj.pk])


def test_view_on_site_does_not_reveal_a_draft_incident(analyst, operator, reporter):
    client = staff_client(analyst)
    draft = file_incident(operator, reporter, submit=False)
    submitted = file_incident(operator, reporter)
    assert client.get(_view_on_site(draft)).status_code == 404
    response = client.get(_view_on_site(submitted))
    assert response.status_code == 302
    assert submitted.reference in response["Location"]
    content_type = ContentType.objects.get_for_model(Incident).pk
    for bad in (
        f"{content_type}/abc",
        f"abc/{submitted.pk}",
        f"999999/{submitted.pk}",
        f"{content_type}/99999999999999999999",
    ):
        assert client.get(f"/admin/r/{bad}/").status_code == 404, bad
