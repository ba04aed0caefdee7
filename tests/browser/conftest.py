import os

import pytest

from tests.conftest import CHROMIUM

# Playwright's sync API runs an event loop in this thread; Django's ORM refuses to run
# inside one unless told it is safe (the test client and live server are synchronous).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def page(live_server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(locale="id-ID")
        page = context.new_page()
        page.set_default_timeout(15000)
        console_errors: list[str] = []
        page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
        page.console_errors = console_errors
        yield page
        context.close()
        browser.close()


@pytest.fixture
def screenshot_dir(tmp_path):
    """Where a browser test writes its screenshots: docs/img/ when DOCS_SCREENSHOTS=1, else a temp dir.

    The screenshots in docs/ are refreshed on purpose (`DOCS_SCREENSHOTS=1 make test
    PYTEST_ARGS="-m browser"`), so an ordinary run leaves the working tree clean.
    """
    if os.environ.get("DOCS_SCREENSHOTS") == "1":
        from pathlib import Path

        target = Path(__file__).resolve().parents[2] / "docs" / "img"
        target.mkdir(parents=True, exist_ok=True)
        return target
    return tmp_path
