import pytest
from django.contrib.staticfiles import finders
from django.templatetags.static import static
from django.urls import reverse

from portal.celery import app as celery_app

pytestmark = pytest.mark.django_db


def test_healthz_is_ok_when_database_and_broker_answer(client):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_healthz_is_503_when_the_broker_is_down(client, settings, monkeypatch):
    # Port 9 on loopback: nothing listens there, the connection is refused at once.
    for key in ("broker_url", "broker_write_url"):
        monkeypatch.setattr(celery_app.conf, key, "redis://127.0.0.1:9/0")
    settings.HEALTHZ_BROKER_TIMEOUT = 0.5
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json()["broker"] == "down"
    assert response.json()["database"] == "ok"


def test_healthz_answers_plain_http_while_pages_redirect_to_https(client, settings):
    # Load balancers probe over plain HTTP inside the network: a redirect would mark the portal down.
    settings.SECURE_SSL_REDIRECT = True

    probe = client.get("/healthz")
    page = client.get("/login/")

    assert probe.status_code == 200 and probe.json()["database"] == "ok"
    assert page.status_code == 301 and page["Location"].startswith("https://")


def test_favicon_ico_leads_to_the_icon(client):
    response = client.get("/favicon.ico")

    # The static files are served by WhiteNoise in production; here the finder shows the file exists.
    assert response.status_code == 301
    assert response["Location"] == static("img/favicon.svg")
    with open(finders.find("img/favicon.svg"), "rb") as icon:
        assert b"<svg" in icon.read()
