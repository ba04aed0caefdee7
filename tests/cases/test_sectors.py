"""Only healthtech operators have the feature: everyone else gets a 404 on every flag URL."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import get_resolver, reverse

from incidents.cases import services
from incidents.cases.models import CaseFlag
from portal.accounts.models import Role, Sector
from portal.alerts.models import Alert
from tests.cases.conftest import flag_post
from tests.conftest import make_member, make_operator
from tests.factories import cases_make_flag

pytestmark = pytest.mark.django_db


def _case_routes() -> list[str]:
    resolver = get_resolver().namespace_dict["cases"][1]
    return sorted({p.name for p in resolver.url_patterns})


@pytest.mark.parametrize(
    "sector", [Sector.ECOMMERCE, Sector.FINTECH_PAYMENT, Sector.FINTECH_LENDING, Sector.OTHER]
)
def test_every_flag_url_is_a_404_for_other_sectors(sector, client_for, cases_seeded):
    operator = make_operator("lain", sector=sector)
    admin = make_member(operator, Role.ADMIN)
    # Even a flag that somehow belongs to them is not reachable.
    flag = cases_make_flag(operator, admin)
    client = client_for(admin)
    routes = _case_routes()
    assert len(routes) == 7
    for name in routes:
        kwargs = {"operator_slug": operator.slug}
        if name not in ("flag_list", "flag_create", "classify"):
            kwargs["flag_id"] = flag.pk
        url = reverse(f"cases:{name}", kwargs=kwargs)
        assert client.get(url).status_code == 404, name
        data = {**flag_post(), "action": "submit", "confirm_classification": "suspect_a", "reason": "mistake"}
        assert client.post(url, data).status_code == 404, name
    assert CaseFlag.objects.count() == 1 and not Alert.objects.exists()


def test_the_service_refuses_a_flag_from_another_sector(cases_seeded):
    from incidents.cases.models import CaseDefinition

    operator = make_operator("bayar", sector=Sector.FINTECH_PAYMENT)
    data = {
        "definition": CaseDefinition.objects.get(is_default=True),
        "symptoms": [],
        "epidemiological": [],
        "province": "ID-JK",
        "age_band": "30-44",
        "sex": "male",
        "legal_basis": "public_task",
    }
    with pytest.raises(ValidationError):
        services.flag_case(operator=operator, actor=None, data=data, identity=services.IdentityInput())
    assert not CaseFlag.objects.exists() and not Alert.objects.exists()


def test_the_navigation_shows_suspected_cases_only_to_healthtech(
    client_for, ht_reporter, healthtech_operator, ecommerce_admin
):
    link = reverse("cases:flag_list", kwargs={"operator_slug": healthtech_operator.slug})
    page = client_for(ht_reporter).get(reverse("accounts:dashboard", args=[healthtech_operator.slug]))
    assert link in page.content.decode()
    shop = ecommerce_admin.memberships.get().operator
    page = client_for(ecommerce_admin).get(reverse("accounts:dashboard", args=[shop.slug])).content.decode()
    assert "/cases/" not in page


def test_another_healthtech_operators_flag_is_a_404(client_for, ht_reporter, cases_seeded):
    other = make_operator("klinik", sector=Sector.HEALTHTECH)
    flag = cases_make_flag(other)
    client = client_for(ht_reporter)
    slug = ht_reporter.memberships.get().operator.slug
    for name in ("flag_detail", "flag_correct", "flag_withdraw"):
        url = reverse(f"cases:{name}", kwargs={"operator_slug": slug, "flag_id": flag.pk})
        assert client.get(url).status_code in (404, 405)
        assert client.post(url, {"reason": "mistake"}).status_code == 404
    flag.refresh_from_db()
    assert flag.is_active


def test_the_healthtech_dashboard_counts_recent_active_flags(client_for, ht_reporter, healthtech_operator):
    from datetime import timedelta

    from django.utils import timezone

    cases_make_flag(healthtech_operator)
    cases_make_flag(healthtech_operator, classification="suspect_c")
    cases_make_flag(healthtech_operator, status="withdrawn")
    cases_make_flag(healthtech_operator, created_at=timezone.now() - timedelta(days=20))
    response = client_for(ht_reporter).get(reverse("accounts:dashboard", args=[healthtech_operator.slug]))
    panel = dict(next(p for t, p in response.context["panels"] if t == "cases/_dashboard_panel.html")["rows"])
    assert response.context["panels"]
    assert sum(panel.values()) == 2
    assert reverse("cases:flag_create", args=[healthtech_operator.slug]) in response.content.decode()
