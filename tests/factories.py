"""How to create, for the isolation sweep, an object a URL keyword refers to.

Each entry: URL keyword -> function(operator, admin_user) returning the keyword's
value for a fresh object that belongs to `operator`. Add one for every new keyword.
When a route's keywords refer to related objects (a report number within an incident
reference), key the factory by the route's sorted keyword tuple, e.g.
("number", "reference"), and return a dict {"number": ..., "reference": ...}.
"""

from collections.abc import Callable

from portal.accounts.models import Membership, Role, User


def _membership(operator, admin_user) -> int:
    n = Membership.objects.filter(operator=operator).count()
    user = User.objects.create_user(f"member{n}-{operator.slug}@example.org", None)
    return Membership.objects.create(user=user, operator=operator, role=Role.VIEWER).pk


def cases_make_flag(operator, actor=None, **fields):
    """Create an active suspect-A flag of `operator` directly (no alert) and return it."""
    from incidents.cases.models import CaseDefinition, CaseFlag
    from incidents.cases.seed import WHO_2020, seed_case_definitions

    seed_case_definitions()  # transactional tests flush the data migration's rows
    values = {
        "definition": CaseDefinition.objects.get(code=WHO_2020),
        "classification": "suspect_a",
        "classes": ["suspect_a"],
        "evaluation": {"classes": ["suspect_a"], "criteria": ["clinical", "epidemiological"]},
        "symptoms": ["cough", "fever"],
        "epidemiological": ["community_transmission"],
        "province": "ID-SN",
        "age_band": "30-44",
        "sex": "female",
        "legal_basis": "public_task",
        "created_by": actor,
        **fields,
    }
    return CaseFlag.objects.create(operator=operator, **values)


def cases_flag(operator, admin_user) -> int:
    return cases_make_flag(operator, admin_user).pk


def _incident(operator, admin_user):
    from incidents.models import Incident
    from incidents.seed import seed_deadline_rules
    from tests.incidents.helpers import file_incident

    seed_deadline_rules()  # transactional tests flush the data migration's rows
    return Incident.objects.filter(operator=operator).first() or file_incident(operator, admin_user)


def _evidence(operator, admin_user) -> int:
    from incidents import services
    from tests.incidents.helpers import pdf_upload

    incident = _incident(operator, admin_user)
    return services.add_evidence(incident=incident, actor=admin_user, upload=pdf_upload()).pk


def consent_version(operator, admin_user) -> int:
    """Create a published privacy policy version with one purpose; return its id."""
    from datetime import date

    from consent import services as consent_services
    from consent.models import Purpose

    current = consent_services.current_policy(operator)
    if current is not None:  # several URL keywords of one route share the operator's policy
        return current.pk
    version = consent_services.create_policy_version(
        operator=operator,
        actor=admin_user,
        data={
            "title": "Kebijakan Privasi",
            "text_id": "Teks.",
            "text_en": "Text.",
            "effective_date": date(2026, 1, 1),
            "change_summary": "",
        },
    )
    Purpose.objects.create(
        version=version,
        code="marketing-email",
        description="E-mail marketing",
        legal_basis="consent",
        data_categories="e-mail address",
        retention="1 year",
    )
    return consent_services.publish_version(version=version, actor=admin_user).pk


def consent_event(operator, admin_user):
    """Record one consent event for `operator`; return its record id."""
    from consent import services as consent_services
    from consent.models import PolicyVersion

    version = PolicyVersion.objects.get(pk=consent_version(operator, admin_user))
    return consent_services.record_consent(
        operator=operator,
        actor=admin_user,
        subject_identifier="customer-1",
        purpose_codes=["marketing-email"],
        state="given",
        policy_version=version,
        method="web_form",
    )[0].record_id


def consent_processing_stop(operator, admin_user) -> int:
    """Record a withdrawal for `operator`; return its stop-processing obligation's id."""
    from consent import services as consent_services
    from consent.models import PolicyVersion, ProcessingStopObligation

    version = PolicyVersion.objects.get(pk=consent_version(operator, admin_user))
    event = consent_services.record_consent(
        operator=operator,
        actor=admin_user,
        subject_identifier="customer-1",
        purpose_codes=["marketing-email"],
        state="withdrawn",
        policy_version=version,
        method="web_form",
    )[0]
    return ProcessingStopObligation.objects.get(event=event).pk


def consent_import(operator, admin_user):
    """Create a previewed consent import of `operator`; return its id."""
    from consent import imports as consent_imports

    consent_version(operator, admin_user)
    data = (
        b"subject_id,purpose,state,event_time,method,policy_version\n"
        b"customer-1,marketing-email,given,2026-01-02T10:00:00+07:00,web_form,1\n"
    )
    consent_import = consent_imports.import_upload(
        operator=operator, actor=admin_user, filename="c.csv", data=data
    )
    consent_imports.import_validate(import_id=consent_import.pk)  # as the worker would
    return consent_import.pk


def _api_key(operator, admin_user) -> int:
    from datetime import timedelta

    from django.utils import timezone

    from portal.api.keys import api_key_create

    key, _secret = api_key_create(
        operator=operator,
        actor=admin_user,
        name="SIEM",
        scopes=["incidents:read"],
        expires_at=timezone.now() + timedelta(days=1),
    )
    return key.pk


def _webhook_endpoint(operator, admin_user):
    """Register a webhook endpoint of `operator` (the test settings allow loopback URLs)."""
    from portal.alerts.operator_webhooks import endpoint_create

    endpoint, _secret = endpoint_create(
        operator=operator,
        actor=admin_user,
        name="SOC",
        url="http://127.0.0.1:9/hook",
        event_types=["operator.incident.message"],
    )
    return endpoint


def _webhook_delivery(operator, admin_user) -> dict:
    """An endpoint of `operator` and a failed delivery to it (of a BSSN message)."""
    from portal.alerts.models import Delivery, DeliveryStatus
    from portal.alerts.operator_webhooks import emit_operator_event

    endpoint = _webhook_endpoint(operator, admin_user)
    incident = _incident(operator, admin_user)
    payload = {"schema": "operator.incident.message/1", "organisation": operator.slug}
    alert = emit_operator_event(
        event_type="operator.incident.message", operator=operator, payload=payload, subject=incident
    )
    delivery = alert.deliveries.get(channel=endpoint)
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.DEAD)
    return {"endpoint_id": endpoint.pk, "delivery_id": delivery.pk}


OBJECT_FACTORIES: dict[str, Callable] = {
    "membership_id": _membership,
    # incidents: one submitted incident per operator, shared by the keywords of a route
    "reference": lambda operator, admin_user: _incident(operator, admin_user).reference,
    "number": lambda operator, admin_user: 1,
    "evidence_id": lambda operator, admin_user: _evidence(operator, admin_user),
    "obligation_id": lambda operator, admin_user: _incident(operator, admin_user).obligations.first().pk,
    # alerts
    # consent
    "version_id": consent_version,
    "record_id": consent_event,
    "import_id": consent_import,
    "stop_id": consent_processing_stop,
    # suspected cases
    "flag_id": cases_flag,
    # API keys and webhook endpoints
    "key_id": lambda operator, admin_user: _api_key(operator, admin_user),
    "endpoint_id": lambda operator, admin_user: _webhook_endpoint(operator, admin_user).pk,
    ("delivery_id", "endpoint_id"): _webhook_delivery,
}
