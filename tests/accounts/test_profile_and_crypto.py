import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.db import connection
from django.test import override_settings
from django.urls import reverse

from portal.accounts.models import Operator
from portal.audit.models import AuditEvent
from portal.crypto import Kind, blind_index
from portal.keyrotation import reset_field_caches

pytestmark = pytest.mark.django_db

PHONE = "+62 21 5550 1234"


def _profile_url(operator):
    return reverse("accounts:profile", kwargs={"operator_slug": operator.slug})


def _profile_data(operator, **changes):
    data = {
        "name": operator.name,
        "pse_registration_number": "",
        "timezone": operator.timezone,
        "province": operator.province,
        "contact_email": operator.contact_email,
        "contact_phone": PHONE,
    }
    data.update(changes)
    return data


def _raw_phone_column(operator) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute("SELECT contact_phone FROM accounts_operator WHERE id = %s", [operator.pk])
        return bytes(cursor.fetchone()[0])


def test_admin_saves_the_profile_and_the_phone_is_encrypted_at_rest(client_for, op_admin, operator):
    response = client_for(op_admin).post(_profile_url(operator), _profile_data(operator))
    assert response.status_code == 302
    operator.refresh_from_db()
    assert operator.contact_phone == PHONE
    raw = _raw_phone_column(operator)
    assert b"5550" not in raw and b"1234" not in raw
    event = AuditEvent.objects.get(action="operator.update")
    assert PHONE not in str(event.changes)


def test_bad_phone_is_refused_and_nothing_changes(client_for, op_admin, operator):
    response = client_for(op_admin).post(
        _profile_url(operator), _profile_data(operator, contact_phone="call me", name="Changed")
    )
    assert response.status_code == 200
    operator.refresh_from_db()
    assert operator.name != "Changed" and operator.contact_phone == ""


def test_viewer_sees_the_profile_but_cannot_edit(client_for, viewer, operator):
    c = client_for(viewer)
    assert c.get(_profile_url(operator)).status_code == 200
    c.post(_profile_url(operator), _profile_data(operator, name="Hijacked"))
    operator.refresh_from_db()
    assert operator.name != "Hijacked"


def test_blind_index_finds_the_operator_whatever_the_phone_format(operator):
    operator.contact_phone = "0812-3456-7890"
    operator.save()
    for typed in ("+62 812 3456 7890", "6281234567890", "0812 3456 7890"):
        assert Operator.objects.get(contact_phone_index=blind_index(Kind.PHONE, typed)) == operator


def test_blind_index_depends_on_the_key():
    assert blind_index(Kind.NIK, "3171012345678901", key="a") != blind_index(
        Kind.NIK, "3171012345678901", key="b"
    )


def test_a_missing_or_wrong_key_fails_loudly(operator):
    operator.contact_phone = PHONE
    operator.save()
    reset_field_caches()  # the field caches its keys; forget them around the override
    try:
        with override_settings(FERNET_KEYS=[Fernet.generate_key().decode()]), pytest.raises(InvalidToken):
            Operator.objects.get(pk=operator.pk)
    finally:
        reset_field_caches()
