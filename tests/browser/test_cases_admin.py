"""BSSN opens the suspected-case dashboard and the identity vault in Chromium: no CSP violation."""

import pytest

from tests.cases.conftest import NIK
from tests.conftest import PASSWORD, give_totp_device, make_operator, totp_code
from tests.factories import cases_make_flag

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_dashboard_and_the_vault_render_under_the_csp(page, live_server, supervisor):
    from incidents.cases.models import CaseIdentity
    from portal.accounts.models import Sector
    from portal.crypto import Kind, blind_index

    operator = make_operator("klinik", sector=Sector.HEALTHTECH)
    for _ in range(3):
        cases_make_flag(operator, province="ID-JK")
    identity = CaseIdentity.objects.create(
        flag=cases_make_flag(operator), nik=NIK, full_name="Budi Contoh", nik_index=blind_index(Kind.NIK, NIK)
    )
    give_totp_device(supervisor)
    page.goto(f"{live_server.url}/login/?next=/admin/")
    page.fill("#id_username", supervisor.email)
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    page.fill("#id_token", totp_code(supervisor))
    page.click("main button[type=submit]")
    page.wait_for_url("**/admin/")

    page.goto(live_server.url + "/admin/cases/caseflag/")
    page.click("text=/Kurva epidemi|Epidemic curve/")
    page.wait_for_url("**/admin/cases/caseflag/dashboard/")
    assert page.locator("svg[role=img] rect").count() == 1  # one day, one class, 4 flags → drawn as <5
    assert "<5" in page.locator("#cases-per-province").inner_text()
    page.goto(f"{live_server.url}/admin/cases/caseidentity/{identity.pk}/change/")
    assert NIK in page.content()
    assert [e for e in page.console_errors if "Content Security Policy" in e] == []
