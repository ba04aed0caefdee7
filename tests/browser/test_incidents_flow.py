"""Issue 3, "It must show" 1: an incident's whole journey through the browser.

The demo reporter files an incident (draft, evidence upload, submit); the BSSN analyst
triages it in the admin and asks for information; the operator answers; a supervisor
closes it; the status history shows every step, on the operator's page and in the admin.
"""

import os
from datetime import timedelta

import pytest
from django.utils import timezone

from incidents.models import Incident, Status
from incidents.seed import seed_deadline_rules
from portal.accounts.demo import demo_email, seed_demo
from portal.accounts.models import User
from tests.conftest import give_totp_device, totp_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DEMO_PASSWORD = "demo-pass-for-browser-tests"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _sign_in(page, live_server, email: str, next_path: str = "/") -> None:
    page.goto(f"{live_server.url}/login/?next={next_path}")
    page.fill("#id_username", email)
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_load_state()


def _sign_in_staff(page, live_server, email: str, next_path: str) -> None:
    user = User.objects.get(email=email)
    give_totp_device(user)
    _sign_in(page, live_server, email, next_path)
    page.fill("#id_token", totp_code(user))
    page.click("main button[type=submit]")
    page.wait_for_url(f"**{next_path}")


def _local(dt) -> str:
    return timezone.localtime(dt, timezone.get_fixed_timezone(7 * 60)).strftime("%Y-%m-%dT%H:%M")


def _new_page(browser):
    page = browser.new_context(locale="id-ID").new_page()
    page.set_default_timeout(15000)
    page.console_errors = []
    page.on("console", lambda msg: page.console_errors.append(msg.text) if msg.type == "error" else None)
    return page


def _history(page) -> list[str]:
    return page.locator("#history tbody tr td:nth-child(3)").all_inner_texts()


def test_an_incident_from_draft_to_closed_through_the_browser(page, live_server, mailoutbox):
    seed_demo(password=DEMO_PASSWORD)
    seed_deadline_rules()  # a transactional test before this one may have flushed them
    browser = page.context.browser
    now = timezone.now()

    # 1. The demo reporter writes a draft.
    _sign_in(page, live_server, demo_email("reporter", "toko-contoh"))
    page.goto(f"{live_server.url}/o/toko-contoh/incidents/")
    page.get_by_role("link", name="Laporkan insiden").click()
    page.fill("#id_title", "Ransomware pada server penagihan")
    page.select_option("#id_category", "ransomware")
    page.select_option("#id_severity", "high")
    page.fill("#id_description", "Berkas di dua server penagihan terenkripsi.")
    page.fill("#id_chronology", "02.00 peringatan EDR; 02.30 server diisolasi.")
    page.fill("#id_actions_taken", "Server diisolasi, pemulihan dari cadangan.")
    page.fill("#id_occurred_at", _local(now - timedelta(hours=5)))
    page.fill("#id_detected_at", _local(now - timedelta(hours=4)))
    page.fill("#id_aware_at", _local(now - timedelta(hours=3)))
    for field in ("impact_confidentiality", "impact_integrity", "impact_availability"):
        page.select_option(f"#id_{field}", "high")
    page.fill("#id_affected_services", "Penagihan")
    page.fill("#id_reporter_phone", "+62 21 555 0101")
    page.get_by_role("button", name="Simpan draf").click()
    page.wait_for_url("**/incidents/INS-*/")
    assert "Draf telah disimpan." in page.inner_text("main")
    reference = Incident.objects.get().reference

    # 2. Evidence upload, then submit.
    page.set_input_files(
        "#id_file", files=[{"name": "log-firewall.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    page.get_by_role("button", name="Unggah").click()
    page.wait_for_load_state()
    assert "log-firewall.pdf telah diunggah." in page.inner_text("main")
    page.get_by_role("button", name="Kirim ke BSSN").click()
    page.wait_for_load_state()
    assert "Insiden telah dikirim ke BSSN." in page.inner_text("main")
    assert Incident.objects.get().status == Status.SUBMITTED

    # 3. The analyst finds it in the admin, triages it and asks for information.
    analyst = _new_page(browser)
    _sign_in_staff(analyst, live_server, "analyst@bssn.example", "/admin/incidents/incident/")
    analyst.get_by_role("link", name=reference).click()
    analyst.wait_for_url("**/admin/incidents/incident/*/change/")
    assert "log-firewall.pdf" in analyst.content()
    analyst.select_option("#transition_to_status", "triage")
    analyst.fill("#transition_reason", "Triase awal")
    analyst.click("#incident-transition input[type=submit]")
    analyst.wait_for_load_state()
    analyst.check("#incident-message input[value=request]")
    analyst.fill("#id_body", "Mohon kirim log VPN tanggal kejadian.")
    analyst.click("#incident-message input[type=submit]")
    analyst.wait_for_load_state()
    assert Incident.objects.get().status == Status.AWAITING_OPERATOR

    # 4. The operator answers on the incident page.
    page.reload()
    assert "BSSN meminta informasi tambahan" in page.inner_text("main")
    assert "Mohon kirim log VPN" in page.inner_text("#conversation")
    page.fill("#conversation #id_body", "Log VPN sudah kami unggah sebagai bukti.")
    page.get_by_role("button", name="Kirim jawaban").click()
    page.wait_for_load_state()
    assert Incident.objects.get().status == Status.TRIAGE

    # 5. The supervisor closes it.
    supervisor = _new_page(browser)
    incident = Incident.objects.get()
    change_path = f"/admin/incidents/incident/{incident.pk}/change/"
    _sign_in_staff(supervisor, live_server, "supervisor@bssn.example", change_path)
    supervisor.select_option("#transition_to_status", "closed")
    supervisor.fill("#transition_reason", "Tertangani; tidak ada tindak lanjut.")
    supervisor.click("#incident-transition input[type=submit]")
    supervisor.wait_for_load_state()
    assert Incident.objects.get().status == Status.CLOSED

    # 6. The status history shows every step, for the operator and in the admin.
    page.reload()
    steps = ["Draf", "Terkirim", "Dalam triase", "Menunggu penyelenggara", "Dalam triase", "Ditutup"]
    assert _history(page) == steps
    assert "Tertangani; tidak ada tindak lanjut." in page.inner_text("#history")
    supervisor.reload()
    admin_history = supervisor.locator("#status_changes-group").inner_text()
    for step in steps:
        assert step in admin_history
    if os.environ.get("INCIDENT_SCREENSHOTS"):
        page.screenshot(path=os.environ["INCIDENT_SCREENSHOTS"] + "/operator.png", full_page=True)
        supervisor.screenshot(path=os.environ["INCIDENT_SCREENSHOTS"] + "/admin.png", full_page=True)
    for p in (page, analyst, supervisor):
        assert not [e for e in p.console_errors if "Content Security Policy" in e]
