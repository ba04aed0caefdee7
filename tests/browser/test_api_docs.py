"""The API reference renders in Chromium under the portal's CSP, from vendored files only."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_api_docs_render_without_csp_violations(page, live_server):
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector("text=/api/v1/incidents/{reference}/submit/")
    assert page.locator(".opblock").count() >= 10
    csp = [e for e in page.console_errors if "Content Security Policy" in e or "Content-Security-Policy" in e]
    assert csp == []
    assert all(url.startswith(live_server.url) for url in requested)  # nothing from a CDN
