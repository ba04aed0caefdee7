import pytest

from portal.accounts.demo import demo_email, seed_demo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DEMO_PASSWORD = "demo-pass-for-browser-tests"


def test_demo_operator_signs_in_and_sees_its_dashboard(page, live_server):
    seed_demo(password=DEMO_PASSWORD)
    page.goto(live_server.url + "/login/")
    page.get_by_label("Alamat email").fill(demo_email("admin", "toko-contoh"))
    page.get_by_label("Kata sandi").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Masuk").click()
    page.wait_for_url("**/o/toko-contoh/")
    assert page.get_by_role("heading", level=1).inner_text() == "PT Toko Contoh Digital"
    assert page.get_by_role("link", name="Dasbor").is_visible()
    # Choosing English in the switcher reloads the page in English (script-enhanced select).
    with page.expect_navigation():
        page.select_option("#lang-select", "en")
    assert page.get_by_role("link", name="Dashboard").is_visible()
    assert page.locator("html").get_attribute("lang") == "en"
    assert not [e for e in page.console_errors if "Content Security Policy" in e]
