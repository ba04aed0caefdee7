"""The organisation admin's API key page, and what a key's use leaves behind."""

import re

import pytest
from django.test import override_settings

from portal.api.models import ApiKey
from portal.audit.models import AuditEvent
from tests.api.conftest import DRAFT, ApiClient

pytestmark = pytest.mark.django_db


def _create(client, operator, **extra):
    data = {"name": "SIEM", "scopes": ["incidents:read", "incidents:write"], "expires_in_days": 90, **extra}
    return client.post(f"/o/{operator.slug}/api-keys/", data)


def test_admin_creates_a_key_shown_once_and_stored_as_a_hash(client_for, op_admin, operator):
    client = client_for(op_admin)
    response = _create(client, operator)
    assert response.status_code == 200
    secret = re.search(r'data-testid="api-key-secret">([^<]+)<', response.content.decode()).group(1)
    key = ApiKey.objects.get()
    assert secret.startswith(key.prefix + "_") and key.key_hash == ApiKey.hash_key(secret)
    assert secret not in str(ApiKey.objects.values().get())
    assert secret not in client.get(f"/o/{operator.slug}/api-keys/").content.decode()
    assert key.user.is_staff is False and not key.user.has_usable_password()
    assert ApiClient(secret).post("/api/v1/incidents/", DRAFT).status_code == 201
    assert AuditEvent.objects.filter(action="api_key.create", actor=op_admin).exists()


def test_a_form_without_scopes_creates_nothing(client_for, op_admin, operator):
    response = _create(client_for(op_admin), operator, scopes=[])
    assert response.status_code == 200 and b"field--error" in response.content
    assert not ApiKey.objects.exists()


def test_cases_scope_is_refused_outside_healthtech(client_for, op_admin, operator):
    response = _create(client_for(op_admin), operator, scopes=["cases:write"])
    assert b"field--error" in response.content
    assert not ApiKey.objects.exists()


def test_revoked_key_stops_at_once(client_for, op_admin, operator, make_key):
    key, secret = make_key()
    client = client_for(op_admin)
    response = client.post(f"/o/{operator.slug}/api-keys/{key.pk}/revoke/")
    assert response.status_code == 302
    assert ApiClient(secret).get("/api/v1/incidents/").status_code == 401
    assert AuditEvent.objects.filter(action="api_key.revoke").exists()


def test_use_shows_last_time_and_address(client_for, op_admin, operator, make_key):
    key, secret = make_key()
    ApiClient(secret).get("/api/v1/incidents/")
    key.refresh_from_db()
    assert key.last_used_at is not None and key.last_used_ip == "127.0.0.1"
    page = client_for(op_admin).get(f"/o/{operator.slug}/api-keys/").content.decode()
    assert "127.0.0.1" in page


def test_reporter_cannot_manage_keys(client_for, reporter, operator):
    assert client_for(reporter).get(f"/o/{operator.slug}/api-keys/").status_code == 403


@override_settings(API_RATE_LIMIT="2/min")
def test_over_the_rate_limit_is_429_with_retry_after(make_key):
    from django.core.cache import cache

    cache.clear()
    _key, secret = make_key()
    client = ApiClient(secret)
    assert [client.get("/api/v1/incidents/").status_code for _ in range(2)] == [200, 200]
    third = client.get("/api/v1/incidents/")
    assert third.status_code == 429
    assert int(third["Retry-After"]) > 0
    assert third["Content-Type"] == "application/problem+json"


@pytest.mark.redis
def test_rate_limit_counts_are_shared_by_every_web_process(make_key):
    """With CACHE_URL on Redis, the count is in Redis, not in one process's memory:
    four gunicorn workers do not give a key four times its limit."""
    import environ
    import redis
    from django.core.cache import cache

    from tests.conftest import TEST_REDIS_URL

    shared = {"default": environ.Env.cache_url_config(TEST_REDIS_URL)}
    with override_settings(CACHES=shared, API_RATE_LIMIT="2/min"):
        cache.clear()
        key, secret = make_key()
        client = ApiClient(secret)
        assert [client.get("/api/v1/incidents/").status_code for _ in range(2)] == [200, 200]
        stored = redis.Redis.from_url(TEST_REDIS_URL).keys(f"*throttle_api_key_{key.pk}")
        assert len(stored) == 1
        assert client.get("/api/v1/incidents/").status_code == 429
        cache.clear()


def test_schema_is_openapi_31_and_docs_page_has_no_inline_script(client):
    schema = client.get("/api/schema/", headers={"Accept": "application/vnd.oai.openapi+json"})
    assert schema.status_code == 200
    body = schema.json()
    assert body["openapi"].startswith("3.1")
    assert "/api/v1/incidents/{reference}/submit/" in body["paths"]
    page = client.get("/api/docs/")
    html = page.content.decode()
    assert page.status_code == 200
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert "swagger-ui-bundle.js" in html and "Content-Security-Policy" in page


def test_an_unknown_api_address_is_a_problem_json_404(api):
    response = api.get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


def test_the_members_page_does_not_list_key_users(client_for, op_admin, operator, make_key):
    key, _secret = make_key()
    page = client_for(op_admin).get(f"/o/{operator.slug}/members/").content.decode()
    assert op_admin.email in page and key.user.email not in page
