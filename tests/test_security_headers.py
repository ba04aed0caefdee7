"""Every response carries the security headers, on every page of the project."""

import pytest
from django.urls import reverse

from portal.accounts.models import Role
from tests.conftest import make_member
from tests.test_isolation import PUBLIC, _make_objects, _operator_routes, _route_keywords, _url, _victim_for

pytestmark = pytest.mark.django_db


def assert_security_headers(response, *, https: bool = True) -> None:
    csp = response.headers.get("Content-Security-Policy", "")
    # File downloads may carry a stricter policy ("default-src 'none'; sandbox").
    assert ("default-src 'self'" in csp and "frame-ancestors 'none'" in csp) or (
        "default-src 'none'" in csp and "sandbox" in csp
    )
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    if https:
        assert "max-age=31536000" in response.headers["Strict-Transport-Security"]


@pytest.fixture(autouse=True)
def _hsts(settings):
    settings.SECURE_HSTS_SECONDS = 31536000


@pytest.mark.parametrize("name", sorted(n for n, _ in _operator_routes()))
def test_every_operator_page_carries_the_headers(name, client_for):
    view = dict(_operator_routes())[name]
    victim, _other = _victim_for(view)
    admin_user = make_member(victim, Role.ADMIN, "owner@victim.example")
    url = _url(name, victim, _make_objects(name, victim, admin_user))
    response = client_for(admin_user).get(url, secure=True)
    assert_security_headers(response)


@pytest.mark.parametrize("name", sorted(n for n in PUBLIC if not _route_keywords(n)))
def test_every_public_page_carries_the_headers(name, client):
    response = client.get(reverse(name), secure=True)
    assert_security_headers(response)


def test_not_found_and_admin_redirects_carry_the_headers(client):
    assert_security_headers(client.get("/no-such-page/", secure=True))
    assert_security_headers(client.get("/admin/", secure=True))


def test_cookies_are_secure_and_http_only_in_production_settings(settings, client, reporter):
    from tests.conftest import PASSWORD

    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    response = client.post(
        reverse("accounts:login"), {"username": reporter.email, "password": PASSWORD}, secure=True
    )
    session_cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert session_cookie["secure"] and session_cookie["httponly"]
    assert session_cookie["samesite"] == "Lax"
