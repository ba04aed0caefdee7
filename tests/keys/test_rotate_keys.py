import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from portal.accounts.models import Operator
from portal.crypto import Kind, blind_index
from portal.keyrotation import reset_field_caches, rotate
from tests.conftest import make_operator

pytestmark = pytest.mark.django_db

# The old key is the suite's own key: rows seeded by data migrations use it too.
OLD_KEY = settings.FERNET_KEYS[0]
NEW_KEY = Fernet.generate_key().decode()
OLD_INDEX_KEY, NEW_INDEX_KEY = settings.BLIND_INDEX_KEY, "new-blind-index-key"


def _raw_phone(operator) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute("SELECT contact_phone FROM accounts_operator WHERE id = %s", [operator.pk])
        return bytes(cursor.fetchone()[0])


@pytest.fixture
def keys():
    """Switch the configured keys inside a test, forgetting keys cached on fields."""

    def _use(fernet_keys: list[str], index_key: str):
        cm = override_settings(FERNET_KEYS=fernet_keys, BLIND_INDEX_KEY=index_key)
        cm.enable()
        reset_field_caches()
        return cm

    active = []
    yield lambda *a: active.append(_use(*a))
    for cm in reversed(active):
        cm.disable()
    reset_field_caches()


def _operators_under_old_keys(keys, n=7):
    keys([OLD_KEY], OLD_INDEX_KEY)
    operators = []
    for i in range(n):
        op = make_operator(f"rot{i}")
        op.contact_phone = f"+62 21 555 000{i}"
        op.save()
        operators.append(op)
    return operators


def test_rotation_leaves_everything_readable_with_only_the_new_key(keys, capsys):
    operators = _operators_under_old_keys(keys)
    before = {op.pk: _raw_phone(op) for op in operators}

    keys([NEW_KEY, OLD_KEY], NEW_INDEX_KEY)  # runbook step 1: new key first, old still there
    call_command("rotate_keys", "--batch-size", "3", "--no-progress")
    assert "Rotated" in capsys.readouterr().out

    keys([NEW_KEY], NEW_INDEX_KEY)  # runbook step 3: old key removed
    for op in operators:
        fresh = Operator.objects.get(pk=op.pk)
        assert fresh.contact_phone == op.contact_phone
        assert _raw_phone(op) != before[op.pk]
        found = Operator.objects.get(contact_phone_index=blind_index(Kind.PHONE, op.contact_phone))
        assert found.pk == op.pk


def test_without_rotation_the_old_rows_do_not_open_with_the_new_key_alone(keys):
    operators = _operators_under_old_keys(keys, n=1)
    keys([NEW_KEY], NEW_INDEX_KEY)
    with pytest.raises(InvalidToken):
        Operator.objects.get(pk=operators[0].pk)


def test_an_interrupted_rotation_resumes_where_it_stopped(keys):
    operators = _operators_under_old_keys(keys, n=6)
    keys([NEW_KEY, OLD_KEY], NEW_INDEX_KEY)

    class Crash(Exception):
        pass

    def crash_after_first_batch(target, n):
        if target.label == "accounts.Operator":
            raise Crash

    with pytest.raises(Crash):
        list(rotate(batch_size=2, progress=crash_after_first_batch))
    results = {t.label: n for t, n in rotate(batch_size=2)}
    assert results["accounts.Operator"] == len(operators) - 2  # the first batch is not redone
    keys([NEW_KEY], NEW_INDEX_KEY)
    assert all(Operator.objects.get(pk=op.pk).contact_phone for op in operators)


def test_rotation_keeps_the_consent_ledger_verifiable_and_searchable(keys, operator):
    from consent import services as consent_services
    from tests.consent.helpers import give, published_version

    keys([OLD_KEY], OLD_INDEX_KEY)
    version = published_version(operator)
    for subject in ("customer-1", "customer-2"):
        give(operator, subject, version=version)
    keys([NEW_KEY, OLD_KEY], NEW_INDEX_KEY)
    list(rotate(batch_size=1))

    keys([NEW_KEY], NEW_INDEX_KEY)
    assert list(consent_services.verify_ledger(operator=operator, deep=True)) == []
    states = consent_services.current_states(operator=operator, subject_identifier="customer-2")
    assert [e.subject_identifier for e in states] == ["customer-2"]
    assert consent_services.has_current_consent(
        operator=operator, subject_identifier="customer-1", purpose_code=states[0].purpose_code
    )


def test_rotation_keeps_suspected_case_duplicates_findable(keys, healthtech_operator):
    from incidents.cases.models import CaseIdentity
    from incidents.cases.services import consultation_index
    from tests.factories import cases_make_flag

    keys([OLD_KEY], OLD_INDEX_KEY)
    flag = cases_make_flag(healthtech_operator, consultation_ref="KONS-001")
    flag.consultation_ref_index = consultation_index(healthtech_operator, "KONS-001")
    flag.save()
    identity = CaseIdentity.objects.create(
        flag=flag, nik="3171014101900001", nik_index=blind_index(Kind.NIK, "3171014101900001")
    )
    keys([NEW_KEY, OLD_KEY], NEW_INDEX_KEY)
    list(rotate(batch_size=5))

    keys([NEW_KEY], NEW_INDEX_KEY)
    assert CaseIdentity.objects.get(nik_index=blind_index(Kind.NIK, "3171014101900001")).pk == identity.pk
    found = type(flag).objects.get(consultation_ref_index=consultation_index(healthtech_operator, "KONS-001"))
    assert found.pk == flag.pk
