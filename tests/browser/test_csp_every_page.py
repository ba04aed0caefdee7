"""Load every operator page and the admin index in Chromium with the CSP enforced:
the browser must report no Content-Security-Policy violation anywhere."""

import pytest
from django.test import Client

from portal.accounts.models import Membership, Role, Sector
from tests.conftest import PASSWORD, give_totp_device, make_operator, totp_code
from tests.test_isolation import _make_objects, _operator_routes, _url

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _csp_errors(page) -> list[str]:
    return [
        e for e in page.console_errors if "Content Security Policy" in e or "Content-Security-Policy" in e
    ]


def _sign_in(page, live_server, email: str, next_path: str = "/") -> None:
    page.goto(f"{live_server.url}/login/?next={next_path}")
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_load_state()


def test_no_operator_page_violates_the_csp(page, live_server, django_user_model):
    user = django_user_model.objects.create_user("owner@csp.example", PASSWORD, full_name="Owner")
    organisations = {}

    def organisation_for(view):
        sectors = getattr(view, "operator_sectors", None)
        sector = sorted(sectors)[0] if sectors else Sector.ECOMMERCE
        if sector not in organisations:
            operator = make_operator(f"csp-{sector}".replace("_", "-"), sector=sector)
            Membership.objects.create(user=user, operator=operator, role=Role.ADMIN)
            organisations[sector] = operator
        return organisations[sector]

    _sign_in(page, live_server, user.email)
    probe = Client()
    probe.force_login(user)
    visited = []
    for name, view in sorted(_operator_routes()):
        operator = organisation_for(view)
        url = _url(name, operator, _make_objects(name, operator, user))
        probed = probe.get(url)
        # POST-only actions, downloads and exports are not pages a browser renders.
        if probed.status_code == 405 or not probed.get("Content-Type", "").startswith("text/html"):
            continue
        response = page.goto(live_server.url + url)
        assert response.status < 400, (name, response.status)
        visited.append(name)
    assert len(visited) >= 5
    assert _csp_errors(page) == [], visited


def test_the_admin_index_does_not_violate_the_csp(page, live_server, supervisor):
    give_totp_device(supervisor)
    _sign_in(page, live_server, supervisor.email, "/admin/")
    page.fill("#id_token", totp_code(supervisor))
    page.click("main button[type=submit]")
    page.wait_for_url("**/admin/")
    assert page.locator("#site-name").is_visible()
    for path in ("/admin/accounts/operator/", "/admin/audit/auditevent/"):
        page.goto(live_server.url + path)
    assert _csp_errors(page) == []
