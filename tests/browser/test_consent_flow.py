"""Browser flow: the demo e-commerce admin publishes a policy, records consent and a
withdrawal, and downloads the consent receipt."""

import json

import pytest

from consent.models import ConsentEvent, PolicyVersion
from portal.accounts.demo import demo_email, seed_demo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DEMO_PASSWORD = "demo-pass-for-browser-tests"
BASE = "/o/toko-contoh/consent"


def _sign_in(page, live_server):
    page.goto(live_server.url + "/login/")
    page.fill("input[name=username]", demo_email("admin", "toko-contoh"))
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.locator("form button[type=submit]").last.click()
    page.wait_for_url("**/o/toko-contoh/")


def _record(page, live_server, state: str):
    page.goto(live_server.url + BASE + "/record/")
    page.fill("#id_subject_id", "pelanggan-0042")
    page.check("input[name=purposes][value=marketing-email]")
    page.select_option("#id_state", state)
    page.select_option("#id_method", "web_form")
    page.locator("main form button[type=submit]").click()
    page.wait_for_selector("a[download]")


def test_demo_admin_publishes_a_policy_records_consent_and_downloads_the_receipt(page, live_server):
    seed_demo(password=DEMO_PASSWORD)
    page.on("dialog", lambda dialog: dialog.accept())  # the "publish?" confirmation
    _sign_in(page, live_server)

    # The consent link is in the organisation navigation.
    page.locator(f".orgnav a[href='{BASE}/']").click()
    page.wait_for_url(f"**{BASE}/")

    # Create a draft, declare a purpose, publish.
    page.goto(live_server.url + BASE + "/policies/new/")
    page.fill("#id_title", "Kebijakan Privasi Toko Contoh")
    page.fill("#id_effective_date", "2026-01-01")
    page.fill("#id_text_id", "# Kebijakan Privasi\n\nKami **melindungi** data pribadi Anda.")
    page.fill("#id_text_en", "# Privacy policy\n\nWe **protect** your personal data.")
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_selector("#id_code")
    page.fill("#id_code", "marketing-email")
    page.fill("#id_description", "Promosi lewat e-mail")
    page.select_option("#id_legal_basis", "consent")
    page.fill("#id_data_categories", "nama, alamat e-mail")
    page.fill("#id_retention", "2 tahun")
    page.fill("#id_withdrawal_method", "Tautan berhenti berlangganan")
    page.locator("form[action$='/purposes/add/'] button[type=submit]").click()
    page.wait_for_selector("form[action$='/publish/']")
    page.locator("form[action$='/publish/'] button").click()
    page.wait_for_selector("form[action$='/retire/']")
    version = PolicyVersion.objects.get(operator__slug="toko-contoh")
    assert version.is_published and version.sha256 in page.content()

    # The public page shows it without signing in (same browser, but no auth needed).
    page.goto(live_server.url + "/policy/toko-contoh/")
    assert "melindungi" in page.content()

    # Record consent, then its withdrawal.
    _record(page, live_server, "given")
    _record(page, live_server, "withdrawn")
    assert list(ConsentEvent.objects.order_by("seq").values_list("state", flat=True)) == [
        "given",
        "withdrawn",
    ]

    # Download the receipt of the withdrawal.
    with page.expect_download() as info:
        page.locator("a[download]").first.click()
    receipt = json.loads(open(info.value.path(), encoding="utf-8").read())  # noqa: SIM115, PTH123
    assert receipt["state"] == "withdrawn"
    assert receipt["pii_principal_id"] == "pelanggan-0042"
    assert receipt["notice"]["policy_hash"]["value"] == version.sha256
    assert receipt["stop_processing_by"]
    assert not [e for e in page.console_errors if "Content Security Policy" in e]
