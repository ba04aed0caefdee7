from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from portal.api.keys import api_key_create
from portal.api.models import Scope
from tests.conftest import make_member

ALL_SCOPES = [Scope.INCIDENTS_READ, Scope.INCIDENTS_WRITE, Scope.CONSENT_READ, Scope.CONSENT_WRITE]


class ApiClient:
    """A test client that sends `Authorization: Bearer <secret>` and JSON bodies."""

    def __init__(self, secret: str | None):
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {secret}"} if secret else {}

    def _h(self, headers):
        return {**self.headers, **(headers or {})}

    def get(self, path, data=None, headers=None):
        return self.client.get(path, data, headers=self._h(headers))

    def post(self, path, data=None, headers=None, **kwargs):
        if "format" in kwargs:  # multipart
            kwargs.pop("format")
            return self.client.post(path, data, headers=self._h(headers))
        return self.client.post(path, data or {}, content_type="application/json", headers=self._h(headers))

    def patch(self, path, data=None, headers=None):
        return self.client.patch(path, data or {}, content_type="application/json", headers=self._h(headers))


@pytest.fixture
def make_key(op_admin):
    def _make(operator=None, scopes=ALL_SCOPES, admin=None, days=30):
        operator = operator or op_admin.memberships.get().operator
        admin = admin or operator.memberships.filter(role="admin").first().user
        return api_key_create(
            operator=operator,
            actor=admin,
            name="SIEM",
            scopes=list(scopes),
            expires_at=timezone.now() + timedelta(days=days),
        )

    return _make


@pytest.fixture
def api(make_key):
    _key, secret = make_key()
    return ApiClient(secret)


@pytest.fixture
def other_api(other_operator):
    admin = make_member(other_operator, "admin", "admin2@globex.example")
    _key, secret = api_key_create(
        operator=other_operator,
        actor=admin,
        name="Other SIEM",
        scopes=ALL_SCOPES,
        expires_at=timezone.now() + timedelta(days=30),
    )
    return ApiClient(secret)


DRAFT = {"title": "Ransomware on the billing servers", "category": "ransomware"}
COMPLETE = {
    "severity": "high",
    "tlp": "amber",
    "reporter_name": "Budi",
    "reporter_email": "budi@acme.example",
    "reporter_phone": "+62 21 555 0100",
    "description": "Files encrypted on two servers.",
    "chronology": "08:00 alert; 08:30 isolated.",
    "impact_confidentiality": "low",
    "impact_integrity": "high",
    "impact_availability": "high",
    "affected_services": "Billing",
    "detected_at": "2026-11-01T08:00:00+07:00",
    "aware_at": "2026-11-01T08:30:00+07:00",
}


@pytest.fixture
def cases_seeded(db):
    """The case definitions and authorities, as tests/cases seeds them."""
    from incidents.cases.seed import seed_case_definitions
    from portal.alerts.seed import seed_authorities

    seed_case_definitions()
    seed_authorities()


@pytest.fixture
def receiver():
    """A local webhook receiver (tests/alerts/receiver.py) for the organisation's endpoints."""
    from tests.alerts.receiver import Receiver

    with Receiver() as r:
        yield r
