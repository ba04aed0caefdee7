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
    from incidents.cases.seed import seed_case_definitions

    seed_case_definitions()  # transactional tests flush the data migration's rows
    values = {
        "definition": CaseDefinition.objects.get(is_default=True),
        "classification": "suspect_a",
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
    from tests.incidents.helpers import file_incident

    return Incident.objects.filter(operator=operator).first() or file_incident(operator, admin_user)


def _evidence(operator, admin_user) -> int:
    from incidents import services
    from tests.incidents.helpers import pdf_upload

    incident = _incident(operator, admin_user)
    return services.add_evidence(incident=incident, actor=admin_user, upload=pdf_upload()).pk


OBJECT_FACTORIES: dict[str, Callable] = {
    "membership_id": _membership,
    # incidents: one submitted incident per operator, shared by the keywords of a route
    "reference": lambda operator, admin_user: _incident(operator, admin_user).reference,
    "number": lambda operator, admin_user: 1,
    "evidence_id": lambda operator, admin_user: _evidence(operator, admin_user),
    "obligation_id": lambda operator, admin_user: _incident(operator, admin_user).obligations.first().pk,
    # alerts
    # consent
    # suspected cases
    "flag_id": cases_flag,
}
