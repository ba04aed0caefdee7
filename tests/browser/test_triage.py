"""Issue 12: a BSSN analyst triages an incident in Chromium; the operator then reads the outcome.

The analyst signs in from the staff link with a TOTP code, filters the changelist, opens
an incident, sets BSSN's severity and TLP through the change form, assigns it, moves it
into triage with a reason, writes an internal note and a message. The operator then sees
the status and the message, never the note. Screenshots of both admin screens at 1280 px
are written to docs/img/ for docs/incidents.md when DOCS_SCREENSHOTS=1.
"""

import pytest

from incidents.models import Incident, Status
from incidents.seed import seed_deadline_rules
from portal.accounts.models import Role
from tests.conftest import PASSWORD, give_totp_device, make_member, make_operator, totp_code
from tests.incidents.helpers import file_incident

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NOTE = "Sumber serangan cocok dengan kampanye yang sedang dipantau."
MESSAGE = "Mohon kirimkan log firewall tanggal kejadian."


def _sign_in(page, url: str, email: str) -> None:
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_load_state()


def _no_horizontal_scroll(page, selector: str = "html") -> bool:
    """Tell whether the element (the page, or the changelist's own scrolling box) fits its width."""
    return page.evaluate(f"(e => e.scrollWidth <= e.clientWidth)(document.querySelector('{selector}'))")


def test_the_analyst_triages_and_the_operator_sees_the_message_not_the_note(
    page, live_server, analyst, screenshot_dir
):
    seed_deadline_rules()
    vital = make_operator("listrik", is_iiv=True)
    vital_reporter = make_member(vital, Role.REPORTER)
    shop = make_operator("toko")
    shop_reporter = make_member(shop, Role.REPORTER)
    incident = file_incident(
        vital,
        vital_reporter,
        title="Serangan ransomware pada server penagihan",
        personal_data_involved=True,
        personal_data_categories=["identity", "contact"],
        data_subjects_count=1200,
    )
    for title in ("Phishing ke pelanggan", "Defacement situs utama", "DDoS pada API pembayaran"):
        file_incident(shop, shop_reporter, title=title, category="phishing", severity="medium")
    give_totp_device(analyst)
    page.set_viewport_size({"width": 1280, "height": 900})

    # The sign-in page shows staff their way in; the second factor follows the password.
    page.goto(live_server.url + "/login/")
    page.click("#staff-sign-in")
    _sign_in(page, live_server.url, analyst.email)
    page.fill("#id_token", totp_code(analyst))
    page.click("main button[type=submit]")
    page.wait_for_url("**/admin/")

    # The changelist fits 1280 px; the IIV filter leaves the one vital incident.
    page.goto(live_server.url + "/admin/incidents/incident/")
    assert page.locator("#result_list tbody tr").count() == 4
    assert _no_horizontal_scroll(page) and _no_horizontal_scroll(page, "#changelist .results")
    page.screenshot(path=str(screenshot_dir / "admin-incident-changelist.png"))
    page.click('#changelist-filter a[href*="operator__is_iiv__exact=1"]')
    page.wait_for_load_state()
    assert page.locator("#result_list tbody tr").count() == 1
    page.click(f"#result_list a:text('{incident.reference}')")
    page.wait_for_url(f"**/admin/incidents/incident/{incident.pk}/change/**")
    assert _no_horizontal_scroll(page)

    # BSSN's assessment through the real form.
    page.select_option("#id_bssn_severity", "critical")
    page.select_option("#id_tlp", "red")
    page.click("input[name=_continue]")
    page.wait_for_load_state()
    incident.refresh_from_db()
    assert (incident.bssn_severity, incident.tlp) == ("critical", "red")

    page.click("#assign-to-me")
    page.wait_for_load_state()
    assert Incident.objects.get(pk=incident.pk).assignee == analyst

    page.select_option("#transition_to_status", Status.TRIAGE)
    page.fill("#transition_reason", "Operator IIV, data pribadi terdampak.")
    page.click("#incident-transition input[type=submit]")
    page.wait_for_load_state()
    assert Incident.objects.get(pk=incident.pk).status == Status.TRIAGE

    page.check("#incident-message input[value=note]")
    page.fill("#incident-message textarea", NOTE)
    page.click("#incident-message input[type=submit]")
    page.wait_for_load_state()
    page.check("#incident-message input[value=comment]")
    page.fill("#incident-message textarea", MESSAGE)
    page.click("#incident-message input[type=submit]")
    page.wait_for_load_state()
    summary = page.locator("#incident-summary").inner_text()
    assert "Kritis" in summary and "TLP:RED" in summary and "WIB" in summary
    assert NOTE in page.content() and MESSAGE in page.content()
    page.screenshot(path=str(screenshot_dir / "admin-incident-change.png"))
    assert [e for e in page.console_errors if "Content Security Policy" in e] == []

    # The operator signs in and reads the status and the message, never the internal note.
    page.context.clear_cookies()
    page.goto(live_server.url + "/login/")
    _sign_in(page, live_server.url, vital_reporter.email)
    page.goto(live_server.url + incident.get_absolute_url())
    text = page.locator("main").inner_text()
    assert "Dalam triase" in text
    assert MESSAGE in text
    assert NOTE not in page.content()
