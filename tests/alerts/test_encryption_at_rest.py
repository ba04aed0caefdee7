import pytest
from django.db import connection

from portal.alerts.models import Alert
from portal.alerts.services import emit_event

pytestmark = pytest.mark.django_db

MARKER = "Siti-Rahmawati-081234567890"


def test_the_alert_data_is_stored_once_and_encrypted(operator, django_capture_on_commit_callbacks):
    payload = {"schema": "test.ping/1", "message": MARKER}
    with django_capture_on_commit_callbacks():
        alert = emit_event(event_type="test.ping", operator=operator, payload=payload)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM alerts_alert WHERE id = %s", [alert.pk])
        raw_row = cursor.fetchone()
    assert not any(MARKER in str(bytes(v) if isinstance(v, bytes | memoryview) else v) for v in raw_row)
    fresh = Alert.objects.get(pk=alert.pk)
    assert fresh.payload["message"] == MARKER
    assert MARKER in fresh.body
