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
    "api:consent_policy_list": ("/api/v1/consent/policies/", ("get",)),
    "api:consent_event_create": ("/api/v1/consent/events/", ("post",)),
    "api:consent_event_bulk": ("/api/v1/consent/events/bulk/", ("post",)),
    "api:consent_subject_lookup": ("/api/v1/consent/subjects/lookup/", ("post",)),
    "api:consent_receipt": ("/api/v1/consent/receipts/{record}/", ("get",)),
    "api:cases_classify": ("/api/v1/cases/classify/", ("post",)),
    "api:cases_flag_create": ("/api/v1/cases/flags/", ("post",)),
    "api:cases_flag_correct": ("/api/v1/cases/flags/{flag}/correct/", ("post",)),
    "api:cases_flag_withdraw": ("/api/v1/cases/flags/{flag}/withdraw/", ("post",)),
}
# Suspected cases exist for healthtech keys only: their tenancy is tested in test_cases.py.
CASES = {name for name in ROUTES if ":cases_" in name}
# Routes that only read, whatever their method (a subject lookup is a POST).
READ_ONLY = {"api:consent_subject_lookup"}
DOCS = {"api:schema", "api:docs", "api:not_found"}


def test_every_api_route_is_swept():
    api_names = {
        f"api:{p.name}" for p in get_resolver().namespace_dict["api"][1].url_patterns if p.name is not None
    }
    assert api_names == set(ROUTES) | DOCS


def _call(client, method, path):
    return getattr(client, method)(path, {})


@pytest.fixture
def victim(api, operator, op_admin):
    from tests.consent.helpers import give, published_version

    published_version(operator, op_admin)
    event = give(operator, "user-1", actor=op_admin)
    return {
        "ref": api.post("/api/v1/incidents/", DRAFT).json()["reference"],
        "record": event.record_id,
        "flag": 1,
    }


def _family(name: str) -> str:
    return "consent" if ":consent_" in name else "cases" if name in CASES else "incidents"


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_another_organisations_object_is_404(name, victim, other_api):
    path, methods = ROUTES[name]
    if name in CASES:
        return
    if name == "api:incident_list":
        listed = other_api.get(path).json()["results"]
        assert victim["ref"] not in [i["reference"] for i in listed]
        return
    if "{" not in path:
        return  # no object in the URL: covered by the consent tests (their data stays theirs)
    for method in methods:
        response = _call(other_api, method, path.format(**victim))
        assert response.status_code == 404, (method, response.content)
        assert response["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_missing_scope_is_403(name, victim, make_key):
    other_family = Scope.INCIDENTS_READ if _family(name) == "consent" else Scope.CONSENT_READ
    _key, secret = make_key(scopes=[other_family])
    client = ApiClient(secret)
    path, methods = ROUTES[name]
    for method in methods:
        assert _call(client, method, path.format(**victim)).status_code == 403, method


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_read_scope_cannot_write(name, victim, make_key):
    if name in CASES:
        return  # one scope, cases:write, reads and writes
    read = Scope.CONSENT_READ if _family(name) == "consent" else Scope.INCIDENTS_READ
    _key, secret = make_key(scopes=[read])
    client = ApiClient(secret)
    path, methods = ROUTES[name]
    for method in methods:
        reads = method == "get" or name in READ_ONLY
        response = _call(client, method, path.format(**victim))
        assert (response.status_code != 403) if reads else (response.status_code == 403), method


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_no_bad_revoked_or_expired_key_is_401(name, victim, make_key):
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
            response = _call(client, method, path.format(**victim))
            assert response.status_code == 401, (method, response.content)
            assert response["WWW-Authenticate"].startswith("Bearer")
