"""Possible duplicates by keyed index only, and no plaintext identity anywhere in the database."""

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from incidents.cases.models import CaseFlag, CaseIdentity
from portal.accounts.models import Role, Sector
from portal.crypto import Kind, blind_index
from tests.cases.conftest import ADDRESS, NAME, NIK, NOTE, PHONE, flag_post
from tests.conftest import make_member, make_operator

pytestmark = pytest.mark.django_db


def _submit(client, operator, **overrides) -> CaseFlag:
    data = {**flag_post(**overrides), "action": "submit", "confirm_classification": "suspect_a"}
    response = client.post(reverse("cases:flag_create", kwargs={"operator_slug": operator.slug}), data)
    assert response.status_code == 302 and "/login/" not in response["Location"]
    return CaseFlag.objects.latest("created_at")


def test_the_same_nik_within_30_days_is_a_possible_duplicate(client_for, ht_reporter, healthtech_operator):
    client = client_for(ht_reporter)
    first = _submit(client, healthtech_operator, consultation_ref="K-1")
    with time_machine.travel(timezone.now() + timedelta(days=29)):
        second = _submit(
            client_for(ht_reporter), healthtech_operator, consultation_ref="K-2", nik="7371 0155 0890 0003"
        )
    assert second.duplicate_of == first and second.is_possible_duplicate
    assert not first.is_possible_duplicate
    page = client.get(second.get_absolute_url()).content.decode()
    assert first.recontact_ref in page


def test_the_same_nik_after_30_days_is_not_linked(client_for, ht_reporter, healthtech_operator):
    client = client_for(ht_reporter)
    _submit(client, healthtech_operator, consultation_ref="K-1")
    with time_machine.travel(timezone.now() + timedelta(days=31)):
        later = _submit(client_for(ht_reporter), healthtech_operator, consultation_ref="K-2")
    assert later.duplicate_of is None


def test_another_nik_is_not_linked(client_for, ht_reporter, healthtech_operator):
    client = client_for(ht_reporter)
    _submit(client, healthtech_operator, consultation_ref="K-1")
    other = _submit(client, healthtech_operator, consultation_ref="K-2", nik="7371014508900004")
    assert other.duplicate_of is None


def test_the_same_consultation_reference_of_the_same_operator_is_linked(
    client_for, ht_reporter, healthtech_operator
):
    client = client_for(ht_reporter)
    first = _submit(client, healthtech_operator, nik="", full_name="")
    second = _submit(client, healthtech_operator, nik="", full_name="")
    assert second.duplicate_of == first


def test_another_operators_consultation_reference_is_not_linked(client_for, ht_reporter, healthtech_operator):
    _submit(client_for(ht_reporter), healthtech_operator, nik="")
    other_org = make_operator("klinik", sector=Sector.HEALTHTECH)
    other = _submit(client_for(make_member(other_org, Role.REPORTER)), other_org, nik="")
    assert other.duplicate_of is None


def test_the_same_nik_at_another_operator_is_linked_but_only_bssn_sees_which_flag(
    client_for, ht_reporter, healthtech_operator
):
    first = _submit(client_for(ht_reporter), healthtech_operator)
    other_org = make_operator("klinik", sector=Sector.HEALTHTECH)
    other_client = client_for(make_member(other_org, Role.REPORTER))
    second = _submit(other_client, other_org)
    assert second.duplicate_of == first
    page = other_client.get(second.get_absolute_url()).content.decode()
    assert first.recontact_ref not in page


def test_a_withdrawn_flag_is_not_a_duplicate_target(client_for, ht_reporter, healthtech_operator):
    from incidents.cases import services

    client = client_for(ht_reporter)
    first = _submit(client, healthtech_operator)
    services.withdraw_flag(flag=first, actor=ht_reporter, reason="mistake")
    second = _submit(client, healthtech_operator)
    assert second.duplicate_of is None


def test_no_table_holds_a_plaintext_nik_name_phone_address_or_note(
    client_for, ht_reporter, healthtech_operator
):
    client = client_for(ht_reporter)
    _submit(client, healthtech_operator)
    _submit(client, healthtech_operator)
    identity = CaseIdentity.objects.first()
    assert identity.nik_index == blind_index(Kind.NIK, NIK)
    # (No short fragments: a 4-digit run occurs by chance in hex hashes and ciphertexts.)
    needles = [
        NIK,
        NAME,
        "Siti Contoh",
        PHONE,
        "812 5555 0199",
        "6281255550199",
        ADDRESS,
        NOTE,
        "KONS-2026-0001",
        "user-4711",
    ]
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608  table names from introspection
            for row in cursor.fetchall():
                text = " ".join(str(v) for v in row)
                found += [f"{table}: {needle}" for needle in needles if needle in text]
    assert not found, found
    # The vault decrypts for the code that is allowed to read it.
    assert identity.nik == NIK and identity.full_name == NAME and identity.phone == PHONE


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_flags_of_one_person_at_the_same_moment_are_linked(client_for, ht_reporter, healthtech_operator):
    import threading

    clients = [client_for(ht_reporter), client_for(ht_reporter)]
    barrier = threading.Barrier(2)
    errors: list[Exception] = []

    def submit(index: int) -> None:
        try:
            barrier.wait()
            data = {
                **flag_post(consultation_ref=f"K-{index}"),
                "action": "submit",
                "confirm_classification": "suspect_a",
            }
            url = reverse("cases:flag_create", kwargs={"operator_slug": healthtech_operator.slug})
            assert clients[index].post(url, data).status_code == 302
        except Exception as exc:  # noqa: BLE001  asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    first, second = CaseFlag.objects.order_by("created_at", "pk")
    links = sorted([first.duplicate_of_id, second.duplicate_of_id], key=lambda v: v or 0)
    assert links in ([None, first.pk], [None, second.pk])  # exactly one names the other
