"""Schemathesis drives every API operation from the OpenAPI schema with a real key.

No response may be a server error or break the schema (status, content type,
headers, body). Runs in-process through the WSGI application.
"""

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.specs.openapi.checks import ignored_auth, negative_data_rejection, positive_data_acceptance

from portal.api.models import Scope
from portal.wsgi import application

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SCOPES = [Scope.INCIDENTS_READ, Scope.INCIDENTS_WRITE, Scope.CONSENT_READ, Scope.CONSENT_WRITE]


@pytest.fixture
def secret(make_key, settings):
    settings.API_RATE_LIMIT = "100000/min"
    return make_key(scopes=SCOPES)[1]


# The schema view reads no database: loading it at collection is safe.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


@pytest.fixture(autouse=True)
def requests_share_the_test_transaction(db):
    """Keep the connection open across requests, as Django's test client does."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@schema.parametrize()
@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_conforms_to_the_schema(case, secret):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {secret}"},
        # A schema-valid request may still be refused with a documented 400: submission
        # completeness, time order and file types by content are rules no schema states.
        excluded_checks=[positive_data_acceptance, negative_data_rejection],
    )


EXCLUDED = [positive_data_acceptance, negative_data_rejection]


def test_stateful_sequences_conform_to_the_schema(secret):
    """Chain operations through the links schemathesis infers (a created incident's reference, …)."""
    workflow = schema.as_state_machine()

    class AuthenticatedWorkflow(workflow):
        def get_call_kwargs(self, case):
            return {"headers": {"Authorization": f"Bearer {secret}"}}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            # ignored_auth replays the call without credentials, but get_call_kwargs puts the key
            # back on every call; 401 for a missing or bad key is tested route by route in
            # tests/api/test_isolation.py.
            case.validate_response(
                response, excluded_checks=[*EXCLUDED, ignored_auth], transport_kwargs=kwargs
            )

    AuthenticatedWorkflow.run(
        settings=hypothesis_settings(
            max_examples=15, stateful_step_count=6, deadline=None, suppress_health_check=list(HealthCheck)
        )
    )
