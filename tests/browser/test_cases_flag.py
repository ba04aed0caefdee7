"""The demo healthtech reporter flags a case in Chromium; the health office receives a signed alert."""

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from incidents.cases.seed import seed_case_definitions
from portal.accounts.demo import demo_email, seed_demo
from portal.alerts.models import Authority, Channel, Delivery
from portal.alerts.seed import seed_authorities
from tests.alerts.receiver import Receiver

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DEMO_PASSWORD = "demo-pass-for-browser-tests"
NIK = "7371015508900003"
NAME = "Siti Contoh Rahmawati"


@pytest.fixture
def eager_celery():
    """Run tasks in the process that enqueues them: the live server delivers on commit, as a worker would."""
    from portal.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def test_the_demo_reporter_flags_a_suspect_a_case_and_the_health_office_gets_it(
    page, live_server, receiver, eager_celery
):
    seed_demo(password=DEMO_PASSWORD)
    seed_case_definitions()
    seed_authorities()
    office = Authority.objects.get(code="dinkes-sn")  # PT Sehat Contoh is in Sulawesi Selatan
    hook = Channel(authority=office, kind="webhook", url=receiver.url)
    receiver.secrets = [hook.rotate_secret(overlap=timedelta(0))]
    hook.save()

    page.goto(live_server.url + "/login/")
    page.fill("#id_username", demo_email("reporter", "sehat-contoh"))
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/o/sehat-contoh/")
    page.click("nav.orgnav a[href$='/cases/']")
    page.click("main a[href$='/cases/new/']")

    panel = page.locator("#classification")
    # WHO 2022.1 is the default: only its epidemiological criteria are shown.
    assert page.locator("input[name=epidemiological][value=contact_of_case]").is_visible()
    assert page.locator("input[name=epidemiological][value=community_transmission]").is_hidden()
    page.check("input[name=epidemiological][value=contact_of_case]")
    page.select_option("#id_definition", label="WHO 2020.2")
    # Choosing WHO 2020.2 shows its criteria, hides (and unticks) the 2022.1 ones.
    assert page.locator("input[name=epidemiological][value=community_transmission]").is_visible()
    assert page.locator("input[name=epidemiological][value=contact_of_case]").is_hidden()
    assert not page.locator("input[name=epidemiological][value=contact_of_case]").is_checked()
    page.check("input[name=symptoms][value=fever]")
    page.check("input[name=symptoms][value=cough]")
    # Clinical criteria alone are not suspect A under WHO 2020.2: the live result says so, and what lacks.
    page.wait_for_selector("#classification[data-classification=none]")
    assert page.locator("[data-submit-button]").is_hidden()
    page.wait_for_selector("[data-missing]")
    assert page.locator("[data-missing]").count() == 3, "suspect A, B and C each say what they lack"
    page.check("input[name=epidemiological][value=community_transmission]")
    page.wait_for_selector("#classification[data-classification=suspect_a]")
    assert re.search(r"suspe(ct|k) A", panel.inner_text(), re.IGNORECASE)

    onset = (timezone.now() - timedelta(days=2)).date().isoformat()
    page.fill("#id_onset_date", onset)
    page.select_option("#id_province", "ID-SN")
    page.select_option("#id_age_band", "30-44")
    page.select_option("#id_sex", "female")
    page.select_option("#id_legal_basis", "public_task")
    page.fill("#id_consultation_ref", "KONS-BROWSER-1")
    page.fill("#id_full_name", NAME)
    page.fill("#id_nik", NIK)
    page.fill("#id_note", "Catatan internal yang tidak diteruskan")
    page.wait_for_selector("#classification[data-classification=suspect_a]")
    submit = page.locator("[data-submit-button]")
    submit.wait_for(state="visible")
    with page.expect_navigation():
        submit.click()

    assert re.search(r"/o/sehat-contoh/cases/\d+/$", page.url), page.url
    assert page.locator("[data-classification=suspect_a]").count() >= 1
    # What the alert was to carry when queued, one row per authority, then one row per attempt.
    assert page.locator("td[data-stage=queued]").count() == 2
    assert page.locator("td[data-stage=sent]").count() >= 1
    assert not [e for e in page.console_errors if "Content Security Policy" in e]

    # The delivery task ran when the flag's transaction committed (eager Celery in the live server).
    webhook = Delivery.objects.get(channel=hook)
    assert webhook.status == "delivered", (webhook.status, webhook.last_error)
    [received] = receiver.accepted()
    assert received.verified, "signed per Standard Webhooks with the office's secret"
    body = received.body.decode()
    data = json.loads(body)["data"]
    assert data["schema"] == "suspected_case.flagged/1"
    assert data["classification"] == "suspect_a" and data["province"] == "ID-SN"
    assert "identity" not in data
    for secret in (NIK, NAME, "Siti", "KONS-BROWSER-1", "Catatan internal", "1990-08-15"):
        assert secret not in body
