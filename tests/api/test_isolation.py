"""Every API route: no/revoked/expired key 401, missing scope 403, another organisation's object 404."""

from datetime import timedelta

import pytest
from django.urls import get_resolver
from django.utils import timezone

from portal.api.models import ApiKey, Scope
from tests.api.conftest import DRAFT, ApiClient

pytestmark = pytest.mark.django_db

# (path template, methods) of every /api/v1/ route; test_every_api_route_is_swept keeps it whole.
ROUTES = {
    "api:incident_list": ("/api/v1/incidents/", ("get", "post")),
    "api:incident_detail": ("/api/v1/incidents/{ref}/", ("get", "patch")),
    "api:incident_submit": ("/api/v1/incidents/{ref}/submit/", ("post",)),
    "api:report_list": ("/api/v1/incidents/{ref}/reports/", ("get", "post")),
    "api:comment_list": ("/api/v1/incidents/{ref}/comments/", ("get", "post")),
    "api:evidence_list": ("/api/v1/incidents/{ref}/evidence/", ("get", "post")),
    "api:deadline_list": ("/api/v1/incidents/{ref}/deadlines/", ("get",)),
}
DOCS = {"api:schema", "api:docs"}


def test_every_api_route_is_swept():
    api_names = {
        f"api:{p.name}" for p in get_resolver().namespace_dict["api"][1].url_patterns if p.name is not None
    }
    assert api_names == set(ROUTES) | DOCS


def _call(client, method, path):
    return getattr(client, method)(path, {})


@pytest.fixture
def victim_ref(api):
    return api.post("/api/v1/incidents/", DRAFT).json()["reference"]


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_another_organisations_object_is_404(name, victim_ref, other_api):
    path, methods = ROUTES[name]
    if "{ref}" not in path:
        listed = other_api.get(path).json()["results"]
        assert victim_ref not in [i["reference"] for i in listed]
        return
    for method in methods:
        response = _call(other_api, method, path.format(ref=victim_ref))
        assert response.status_code == 404, (method, response.content)
        assert response["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_missing_scope_is_403(name, victim_ref, make_key):
    _key, read_only = make_key(scopes=[Scope.CONSENT_READ])
    client = ApiClient(read_only)
    path, methods = ROUTES[name]
    for method in methods:
        assert _call(client, method, path.format(ref=victim_ref)).status_code == 403, method


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_read_scope_cannot_write(name, victim_ref, make_key):
    _key, secret = make_key(scopes=[Scope.INCIDENTS_READ])
    client = ApiClient(secret)
    path, methods = ROUTES[name]
    for method in methods:
        expected = 200 if method == "get" else 403
        assert _call(client, method, path.format(ref=victim_ref)).status_code == expected, method


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_no_bad_revoked_or_expired_key_is_401(name, victim_ref, make_key):
    revoked, revoked_secret = make_key()
    ApiKey.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    expired, expired_secret = make_key()
    ApiKey.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    path, methods = ROUTES[name]
    clients = [
        ApiClient(None),
        ApiClient("pik_00000000_wrong"),
        ApiClient(revoked_secret),
        ApiClient(expired_secret),
    ]
    for client in clients:
        for method in methods:
            response = _call(client, method, path.format(ref=victim_ref))
            assert response.status_code == 401, (method, response.content)
            assert response["WWW-Authenticate"].startswith("Bearer")
