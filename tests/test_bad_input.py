"""Input no view can use is refused with a 400 or a form error, never a 500.

The cases an outside probe found: a form body in UTF-16, NUL characters (PostgreSQL
refuses them in any text), a date at the end of the calendar, an address longer than
its column. Clients enforce CSRF, as a browser's request is checked.
"""

import pytest
from django.test import Client
from django.urls import reverse

from portal.accounts.models import Invitation, Role
from tests.conftest import make_member

pytestmark = pytest.mark.django_db

UTF16_FORM = "application/x-www-form-urlencoded; charset=utf-16"


def _csrf_client(user=None, page: str = "/login/") -> tuple[Client, str]:
    client = Client(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user)
    client.get(page)
    return client, client.cookies["csrftoken"].value


def _utf16_body(**fields) -> str:
    # The test client encodes the body in the charset the content type names.
    return "&".join(f"{key}={value}" for key, value in fields.items())


@pytest.mark.parametrize("name", ["accounts:login", "accounts:password_reset"])
def test_anonymous_form_in_utf16_is_a_400(name):
    client, token = _csrf_client()
    body = _utf16_body(username="a@b.example", email="a@b.example", password="x", csrfmiddlewaretoken=token)
    response = client.post(reverse(name), body, content_type=UTF16_FORM, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 400
    assert response.content  # a message, not the empty page of a crashed error handler


def test_operator_form_in_utf16_is_a_400_and_invites_nobody(op_admin, operator):
    members = reverse("accounts:members", kwargs={"operator_slug": operator.slug})
    client, token = _csrf_client(op_admin, members)
    body = _utf16_body(email="new@acme.example", role=Role.VIEWER, csrfmiddlewaretoken=token)
    response = client.post(
        members,
        body,
        content_type=UTF16_FORM,
        HTTP_X_CSRFTOKEN=token,
    )
    assert response.status_code == 400
    assert not Invitation.objects.exists()


@pytest.mark.parametrize(
    "name",
    ["incidents:export", "consent:export_csv", "consent:export_json", "incidents:list", "alerts:alert_list"],
)
def test_nul_in_a_query_value_is_a_400(name, op_admin, operator, client_for):
    url = reverse(name, kwargs={"operator_slug": operator.slug})
    response = client_for(op_admin).get(url, {"q": "a\x00b", "status": "\x00"})
    assert response.status_code == 400


def test_nul_in_a_query_key_or_cookie_is_a_400(op_admin, operator, client_for):
    client = client_for(op_admin)
    assert (
        client.get(reverse("incidents:list", kwargs={"operator_slug": operator.slug}) + "?a%00=1").status_code
        == 400
    )
    client.cookies["django_language"] = "id\x00"
    assert client.get(reverse("incidents:list", kwargs={"operator_slug": operator.slug})).status_code == 400


def test_nul_in_a_form_value_is_a_400_and_invites_nobody(op_admin, operator, client_for):
    response = client_for(op_admin).post(
        reverse("accounts:members", kwargs={"operator_slug": operator.slug}),
        {"email": "new\x00@acme.example", "role": Role.VIEWER},
    )
    assert response.status_code == 400
    assert not Invitation.objects.exists()


def test_nul_in_a_path_value_is_a_400(client):
    assert client.get("/invitation/abc%00def/").status_code == 400


def test_nul_in_the_admin_search_is_a_400(staff_client, supervisor):
    response = staff_client(supervisor).get("/admin/incidents/incident/", {"q": "\x00"})
    assert response.status_code == 400


def test_a_filter_date_at_the_end_of_the_calendar_is_a_form_error(healthtech_operator, client_for):
    viewer = make_member(healthtech_operator, Role.VIEWER)
    url = reverse("cases:flag_list", kwargs={"operator_slug": healthtech_operator.slug})
    response = client_for(viewer).get(url, {"until": "9999-12-31", "since": "0001-01-01"})
    assert response.status_code == 200
    assert response.context["filters"].errors.keys() == {"until", "since"}


def test_an_overlong_invitation_address_is_a_form_error(op_admin, operator, client_for):
    address = "a" * 240 + "@example.org"  # 252 + ... = 260 characters with the padding below
    address = "x" * (260 - len(address)) + address
    response = client_for(op_admin).post(
        reverse("accounts:members", kwargs={"operator_slug": operator.slug}),
        {"email": address, "role": Role.VIEWER},
    )
    assert response.status_code == 200
    assert "email" in response.context["invite_form"].errors
    assert not Invitation.objects.exists()


@pytest.mark.parametrize(
    "query",
    [
        "created_at__year=2147483648",
        "created_at__year=99999",
        "created_at__month=13",
        # Found by the URL fuzz: int() refuses a string of over 4,300 digits.
        "created_at__year=" + "9" * 4400,
        "created_at__month=" + "1" * 4400,
    ],
)
def test_an_admin_date_filter_out_of_range_is_not_a_500(query, staff_client, supervisor):
    response = staff_client(supervisor).get(f"/admin/incidents/incident/?{query}")
    assert response.status_code < 500
    response = staff_client(supervisor).get(f"/admin/consent/consentimport/?{query}")
    assert response.status_code < 500


@pytest.mark.parametrize("page", ["config", "qrcode"])
def test_an_admin_page_naming_a_missing_row_is_a_404(page, staff_client, supervisor):
    # django-otp's device pages look the device up with .get(): found by the URL fuzz.
    response = staff_client(supervisor).get(f"/admin/otp_totp/totpdevice/999999/{page}/")
    assert response.status_code == 404


def test_the_api_gets_its_bad_request_as_problem_details(client):
    # Found by schemathesis after the merge: the API documents every error as problem+json.
    response = client.post("/api/v1/incidents/", {"title": "bad\x00title"})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 400
