import pytest
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
