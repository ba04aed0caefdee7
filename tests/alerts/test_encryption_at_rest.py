import pytest
from django.db import connection

from portal.alerts.models import Alert
from portal.alerts.services import emit_event

pytestmark = pytest.mark.django_db

MARKER = "Siti-Rahmawati-081234567890"


def test_alert_payload_and_body_are_encrypted_at_rest(operator, django_capture_on_commit_callbacks):
    payload = {"schema": "test.ping/1", "message": MARKER}
    with django_capture_on_commit_callbacks():
        alert = emit_event(event_type="test.ping", operator=operator, payload=payload)
    with connection.cursor() as cursor:
        cursor.execute("SELECT payload, body FROM alerts_alert WHERE id = %s", [alert.pk])
        raw_payload, raw_body = cursor.fetchone()
    assert MARKER.encode() not in bytes(raw_payload) and MARKER.encode() not in bytes(raw_body)
    fresh = Alert.objects.get(pk=alert.pk)
    assert fresh.payload["message"] == MARKER
    assert MARKER in fresh.body
