"""An operator member opens "Peringatan terkirim" and sees what went to which authority."""

import pytest

from portal.alerts.models import EventType
from portal.alerts.seed import seed_authorities
from portal.alerts.services import emit_event
from tests.conftest import PASSWORD, make_member, make_operator

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_member_sees_the_alerts_sent_about_their_organisation(page, live_server):
    seed_authorities()
    operator = make_operator("alerta")
    viewer = make_member(operator, "viewer")
    alert = emit_event(
        event_type=EventType.INCIDENT_SUBMITTED,
        operator=operator,
        payload={"schema": "incident.submitted/1", "incident": {"reference": "INS-2026-000001"}},
    )
    page.goto(live_server.url + "/login/")
    page.get_by_label("Alamat email").fill(viewer.email)
    page.get_by_label("Kata sandi").fill(PASSWORD)
    page.get_by_role("button", name="Masuk").click()
    page.wait_for_url(f"**/o/{operator.slug}/")
    page.get_by_role("link", name="Peringatan terkirim").first.click()
    page.wait_for_url(f"**/o/{operator.slug}/alerts/")
    assert page.get_by_role("heading", level=1).inner_text() == "Peringatan yang dikirim kepada otoritas"
    row = page.locator("tbody tr").first
    assert "Insiden dilaporkan" in row.inner_text()
    assert "BSSN — CSIRT Nasional" in row.inner_text()
    assert alert.webhook_id in row.inner_text()
    row.locator("summary").click()  # the list of disclosed fields opens without script
    assert row.get_by_text("incident.reference").is_visible()
    page.select_option("#id_event_type", EventType.INCIDENT_DEADLINE_MISSED.value)
    page.locator("form.filters button[type=submit]").click()
    assert "Belum ada peringatan" in page.content()
    assert not [e for e in page.console_errors if "Content Security Policy" in e]
