"""A web upload end to end with a real Redis broker and a real Celery worker process."""

import os
import time

import pytest
import redis
from django.urls import reverse

from consent import services
from consent.models import ConsentEvent, ConsentImport
from tests.alerts.worker import Worker, use_broker
from tests.consent.helpers import published_version
from tests.consent.test_import import _csv, _rows

pytestmark = [
    pytest.mark.celery_worker,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
]

BROKER = os.environ.get("TEST_REDIS_URL", "")


@pytest.fixture
def worker(django_db_setup):
    from portal.celery import app

    redis.Redis.from_url(BROKER).flushdb()
    # Tasks published by name (send_task) connect through the write URL.
    app.conf.broker_write_url = BROKER
    use_broker(BROKER)
    worker = Worker(BROKER).start()
    yield worker
    worker.cleanup()
    app.conf.broker_write_url = None
    use_broker("memory://")


def _wait_for(client, url: str, status: str, worker: Worker) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        data = client.get(url).json()
        if data["status"] == status:
            return data
        time.sleep(0.2)
    raise AssertionError(f"no {status!r} in time: {data}\n--- worker log ---\n{worker.output()[-3000:]}")


def test_a_worker_checks_and_imports_an_upload_while_the_request_returns_at_once(
    client_for, reporter, operator, worker
):
    import io

    published_version(operator)
    c = client_for(reporter)
    upload = io.BytesIO(_csv(_rows(2_000)))
    upload.name = "consents.csv"
    response = c.post(reverse("consent:import", args=[operator.slug]), {"file": upload})
    assert response.status_code == 302
    imp = ConsentImport.objects.get()
    status_url = reverse("consent:import_status", args=[operator.slug, imp.pk])

    checked = _wait_for(c, status_url, "previewed", worker)
    assert checked["rows_done"] == 2_000 and not ConsentEvent.objects.exists()
    assert "cu••••••00" in c.get(response["Location"]).content.decode()  # the masked preview

    c.post(reverse("consent:import_confirm", args=[operator.slug, imp.pk]))
    _wait_for(c, status_url, "committed", worker)
    imp.refresh_from_db()
    assert imp.imported_count == 2_000
    assert ConsentEvent.objects.filter(operator=operator).count() == 2_000
    assert list(services.verify_ledger(operator=operator)) == []
