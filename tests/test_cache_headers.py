"""Signed-in responses stay out of caches; every response denies unused browser features;
X-Forwarded-Proto counts only from a configured proxy."""

import pytest
from django.test import Client
from django.urls import reverse

from portal.accounts.models import Role
from tests.conftest import make_member
from tests.test_isolation import PUBLIC, _make_objects, _operator_routes, _route_keywords, _url, _victim_for

pytestmark = pytest.mark.django_db


def assert_private(response) -> None:
    directives = {d.strip() for d in response.headers.get("Cache-Control", "").split(",")}
    assert {"private", "no-store"} <= directives, response.headers.get("Cache-Control")
    assert "public" not in directives


@pytest.mark.parametrize("name", sorted(n for n, _ in _operator_routes()))
def test_every_operator_page_and_export_is_private_and_not_stored(name, client_for):
    view = dict(_operator_routes())[name]
    victim, _other = _victim_for(view)
    admin_user = make_member(victim, Role.ADMIN, "owner@victim.example")
    url = _url(name, victim, _make_objects(name, victim, admin_user))
    response = client_for(admin_user).get(url)
    assert response.status_code < 500
    assert_private(response)
    assert "camera=()" in response.headers["Permissions-Policy"]


def test_the_admin_is_private_and_not_stored(staff_client, supervisor):
    response = staff_client(supervisor).get("/admin/incidents/incident/")
    assert response.status_code == 200
    assert_private(response)


@pytest.mark.parametrize("name", sorted(n for n in PUBLIC if not _route_keywords(n)))
def test_every_public_page_denies_unused_browser_features(name, client):
    response = client.get(reverse(name))
    assert "geolocation=()" in response.headers["Permissions-Policy"]


def _is_https(settings, remote_addr: str) -> bool:
    settings.SECURE_HSTS_SECONDS = 3600
    response = Client().get(
        reverse("accounts:login"), REMOTE_ADDR=remote_addr, HTTP_X_FORWARDED_PROTO="https"
    )
    return "Strict-Transport-Security" in response.headers


def test_forwarded_proto_counts_only_from_a_configured_proxy(settings):
    settings.TRUSTED_PROXY_NETWORKS = ["10.0.0.2/32"]
    assert _is_https(settings, "10.0.0.2")
    assert not _is_https(settings, "203.0.113.9")  # a client cannot claim HTTPS itself


def test_a_client_cannot_skip_the_https_redirect_by_claiming_https(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.TRUSTED_PROXY_NETWORKS = ["10.0.0.2/32"]
    direct = Client().get(
        reverse("accounts:login"), REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_PROTO="https"
    )
    assert direct.status_code == 301 and direct["Location"].startswith("https://")
    proxied = Client().get(reverse("accounts:login"), REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_PROTO="https")
    assert proxied.status_code == 200
