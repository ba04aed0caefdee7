"""BSSN's dashboard in Chromium: charts drawn, filters applied, no CSP violation.

With DOCS_SCREENSHOTS=1 it refreshes the screenshots kept in docs/img/.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import PASSWORD, give_totp_device, make_member, make_operator, totp_code
from tests.factories import cases_make_flag
from tests.incidents.helpers import file_incident

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _sign_in(page, live_server, user):
    give_totp_device(user)
    page.goto(f"{live_server.url}/login/?next=/admin/")
    page.fill("#id_username", user.email)
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    page.fill("#id_token", totp_code(user))
    page.click("main button[type=submit]")
    page.wait_for_url("**/admin/")


def test_an_analyst_reads_the_dashboard_under_the_csp(page, live_server, analyst, screenshot_dir):
    from incidents.seed import seed_deadline_rules
    from portal.accounts.models import Role, Sector

    seed_deadline_rules()  # a transactional test flushed the migration's rules
    shop = make_operator("toko")
    bank = make_operator("bank", sector=Sector.FINTECH_PAYMENT, province="ID-JB")
    clinic = make_operator("klinik", sector=Sector.HEALTHTECH)
    for operator, categories in ((shop, ["phishing", "malware", "ddos"]), (bank, ["phishing", "ransomware"])):
        reporter = make_member(operator, Role.REPORTER)
        for category in categories:
            file_incident(operator, reporter, category=category)
    for days in (3, 10, 17):
        cases_make_flag(clinic, onset_date=timezone.localdate() - timedelta(days=days))

    _sign_in(page, live_server, analyst)
    page.click("p.dashboard-link a")
    page.wait_for_url("**/admin/dashboard/")
    assert page.locator("#panel-weekly_sector svg[role=img] rect").count() >= 2
    assert page.locator("#panel-epicurve svg[role=img] rect").count() >= 1
    assert page.locator("section.dashboard-panel").count() == 7
    screenshots = screenshot_dir
    if screenshots:
        page.set_viewport_size({"width": 1280, "height": 900})
        page.screenshot(path=f"{screenshots}/dashboard.png", full_page=True)

    page.select_option("#id_sector", Sector.FINTECH_PAYMENT)
    page.click("form.dashboard-filters button[type=submit]")
    page.wait_for_url("**/admin/dashboard/?*")
    # Only the bank's two incidents remain, in one week and one sector: one bar.
    assert page.locator("#panel-weekly_sector svg[role=img] rect[class^=chart-s]").count() == 1
    page.locator("#panel-weekly_sector summary").click()
    assert "2" in page.locator("#panel-weekly_sector table.dashboard-table tbody").inner_text()
    if screenshots:
        page.screenshot(path=f"{screenshots}/dashboard-filtered.png", full_page=True)
    assert [e for e in page.console_errors if "Content Security Policy" in e] == []
