"""The consent ledger: append-only, encrypted, hash-chained, and its current state."""

import threading
from datetime import timedelta

import pytest
from django.contrib.admin.sites import site
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from consent import imports, services
from consent.models import ConsentEvent, ImmutableError, LedgerHead
from portal.audit.models import AuditEvent
from tests.consent.helpers import PURPOSES, give, published_version

pytestmark = pytest.mark.django_db


def _raw_rows(table: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table}")  # noqa: S608  test-only constant table names
        return [repr(row) for row in cursor.fetchall()]


def test_events_cannot_be_updated_or_deleted_through_the_orm(operator):
    event = give(operator, "customer-1")
    event.state = "withdrawn"
    with pytest.raises(ImmutableError):
        event.save()
    with pytest.raises(ImmutableError):
        event.delete()
    with pytest.raises(ImmutableError):
        ConsentEvent.objects.filter(pk=event.pk).update(state="withdrawn")
    with pytest.raises(ImmutableError):
        ConsentEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(ImmutableError):
        ConsentEvent.objects.bulk_update([event], ["state"])
    assert ConsentEvent.objects.get(pk=event.pk).state == "given"


def test_the_admin_is_read_only_and_never_decrypts_identifiers(staff_client, supervisor, operator):
    event = give(operator, "customer-secret-77")
    model_admin = site._registry[ConsentEvent]
    assert not model_admin.has_add_permission(None)
    assert not model_admin.has_change_permission(None, event)
    assert not model_admin.has_delete_permission(None, event)
    c = staff_client(supervisor)
    listing = c.get(reverse("admin:consent_consentevent_changelist"))
    detail = c.get(reverse("admin:consent_consentevent_change", args=[event.pk]))
    assert listing.status_code == 200 and detail.status_code == 200
    for response in (listing, detail):
        assert "customer-secret-77" not in response.content.decode()
    assert (
        c.post(
            reverse("admin:consent_consentevent_change", args=[event.pk]), {"state": "refused"}
        ).status_code
        == 403
    )
    assert (
        c.post(reverse("admin:consent_consentevent_delete", args=[event.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert ConsentEvent.objects.get(pk=event.pk).state == "given"


def test_no_plaintext_identifier_is_stored_in_any_ledger_table(operator):
    give(operator, "customer-plain-4242")
    imp = imports.import_upload(
        operator=operator,
        actor=None,
        filename="x.csv",
        data=b"subject_id,purpose,state,event_time,method,policy_version\n"
        b"customer-plain-9999,marketing-email,given,2026-01-02T10:00:00+07:00,web_form,1\n",
    )
    imports.import_validate(import_id=imp.pk)
    for table in ("consent_consentevent", "consent_ledgerhead", "consent_consentimport", "audit_auditevent"):
        dump = " ".join(_raw_rows(table))
        assert "customer-plain-4242" not in dump, table
        assert "customer-plain-9999" not in dump, table


def test_a_lookup_finds_that_subjects_events_and_no_one_elses(client_for, viewer, operator, other_operator):
    give(operator, "customer-1", PURPOSES[0])
    give(operator, "customer-1", PURPOSES[1])
    give(operator, "customer-2", PURPOSES[0])
    give(other_operator, "customer-1", PURPOSES[0])
    result = services.lookup_subject(operator=operator, actor=viewer, subject_identifier=" customer-1 ")
    assert len(result.history) == 2
    assert {e.subject_identifier for e in result.history} == {"customer-1"}
    assert {e.operator_id for e in result.history} == {operator.pk}
    assert sorted(e.purpose_code for e in result.current) == sorted(PURPOSES)


def test_the_lookup_page_shows_state_and_history_and_is_audited(client_for, viewer, operator):
    now = timezone.now()
    give(operator, "customer-1", event_at=now - timedelta(days=2))
    give(operator, "customer-1", state="withdrawn", event_at=now - timedelta(hours=1))
    response = client_for(viewer).post(
        reverse("consent:lookup", args=[operator.slug]), {"subject_id": "customer-1"}
    )
    page = response.content.decode()
    assert response.status_code == 200 and "customer-1" in page
    assert page.count("/receipts/") == 2
    audit = AuditEvent.objects.get(action="consent.lookup")
    assert audit.actor == viewer and audit.operator_id == operator.pk
    assert "customer-1" not in repr(audit.changes)


def test_the_current_state_comes_from_the_latest_event_per_purpose(operator):
    now = timezone.now()
    give(operator, "c-1", PURPOSES[0], event_at=now - timedelta(days=3))
    give(operator, "c-1", PURPOSES[0], state="withdrawn", event_at=now - timedelta(days=1))
    give(operator, "c-1", PURPOSES[1], state="refused", event_at=now - timedelta(days=2))
    # Recorded later but happened earlier: it does not override the withdrawal.
    give(operator, "c-1", PURPOSES[0], event_at=now - timedelta(days=2))
    states = {
        e.purpose_code: e.state for e in services.current_states(operator=operator, subject_identifier="c-1")
    }
    assert states == {PURPOSES[0]: "withdrawn", PURPOSES[1]: "refused"}


def test_the_current_state_is_computed_by_the_database(operator, django_assert_max_num_queries):
    for i in range(5):
        give(operator, "c-1", PURPOSES[i % 2], event_at=timezone.now() - timedelta(days=10 - i))
    with django_assert_max_num_queries(1) as ctx:
        current = services.current_states(operator=operator, subject_identifier="c-1")
    assert len(current) == 2
    assert "ROW_NUMBER" in ctx.captured_queries[0]["sql"].upper()


def test_withdrawal_sets_the_stop_processing_deadline_72_hours_later(operator):
    at = timezone.now() - timedelta(hours=5)
    event = give(operator, "c-1", state="withdrawn", event_at=at)
    assert event.stop_processing_by == at + timedelta(hours=72)
    assert give(operator, "c-1").stop_processing_by is None


def test_events_point_at_a_published_version_declaring_the_purpose(operator):
    from django.core.exceptions import ValidationError

    from tests.consent.helpers import draft_version

    version = published_version(operator)
    with pytest.raises(ValidationError):
        give(operator, "c-1", "not-declared", version=version)
    with pytest.raises(ValidationError):
        give(operator, "c-1", version=draft_version(operator))
    assert not ConsentEvent.objects.exists()


def test_verify_ledger_passes_on_an_intact_chain(operator, other_operator, capsys):
    for i in range(3):
        give(operator, f"c-{i}")
        give(other_operator, f"c-{i}")
    assert list(services.verify_ledger()) == []
    call_command("verify_ledger")
    call_command("verify_ledger", "--operator", operator.slug, "--deep")
    assert "intact: 3 events" in capsys.readouterr().out


def test_verify_ledger_names_an_event_altered_behind_the_orms_back(operator):
    events = [give(operator, f"c-{i}") for i in range(4)]
    target = events[2]
    with connection.cursor() as cursor:
        # On PostgreSQL the trigger must be disabled first, as an attacker with the
        # table owner's rights would.
        if connection.vendor == "postgresql":
            cursor.execute(
                "ALTER TABLE consent_consentevent DISABLE TRIGGER consent_consentevent_append_only"
            )
        cursor.execute("UPDATE consent_consentevent SET state = 'refused' WHERE seq = %s", [target.seq])
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE consent_consentevent ENABLE TRIGGER consent_consentevent_append_only")
    breaks = list(services.verify_ledger(operator=operator))
    assert [(b.seq, b.record_id) for b in breaks] == [(target.seq, str(target.record_id))]
    with pytest.raises(CommandError):
        call_command("verify_ledger", "--operator", operator.slug)


@pytest.mark.postgres
def test_postgres_refuses_raw_update_and_delete(operator):
    event = give(operator, "c-1")
    for sql in (
        "UPDATE consent_consentevent SET state = 'refused'",
        "DELETE FROM consent_consentevent",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)
    assert ConsentEvent.objects.get(pk=event.pk).state == "given"


@pytest.mark.postgres
def test_verify_ledger_names_the_row_altered_with_the_trigger_disabled(operator, capsys):
    events = [give(operator, f"c-{i}") for i in range(5)]
    target = events[3]
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE consent_consentevent DISABLE TRIGGER consent_consentevent_append_only")
        cursor.execute(
            "UPDATE consent_consentevent SET purpose_code = %s WHERE record_id = %s",
            [PURPOSES[1], target.record_id],
        )
        cursor.execute("ALTER TABLE consent_consentevent ENABLE TRIGGER consent_consentevent_append_only")
    with pytest.raises(CommandError, match="1 broken"):
        call_command("verify_ledger", "--operator", operator.slug)
    err = capsys.readouterr().err
    assert f"seq={target.seq}" in err and str(target.record_id) in err and "content does not match" in err
    # The trigger is back: the same change is refused again.
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE consent_consentevent SET state = 'refused'")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_form_one_valid_chain(operator):
    published_version(operator)
    errors = []

    def write(n: int) -> None:
        try:
            for i in range(10):
                give(operator, f"w{n}-{i}")
        except Exception as exc:  # noqa: BLE001  reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert ConsentEvent.objects.filter(operator=operator).count() == 40
    assert LedgerHead.objects.get(operator=operator).last_seq == 40
    assert list(services.verify_ledger(operator=operator)) == []


def test_the_blind_index_shortcut_of_the_importer_matches_portal_crypto(operator):
    from consent.importer import _Validator, row_context
    from portal.crypto import Kind, blind_index

    validator = _Validator(row_context(operator, header=["subject_id"], delimiter=","))
    for value in ("customer-1", " Ｃｕｓｔｏｍｅｒ-2 ", "ID 0042"):
        assert validator.subject_index(value) == blind_index(Kind.IDENTIFIER, value.strip())


def test_the_importers_evidence_json_is_the_canonical_json(operator):
    from consent.import_rows import Row
    from consent.importer import _Validator, row_context
    from consent.models import canonical_json

    version = published_version(operator)
    header = ["subject_id", "purpose", "state", "event_time", "method", "policy_version", "evidence"]
    validator = _Validator(row_context(operator, header=header, delimiter=","))
    for evidence in ('ui "text" \\ 7', "tab\tline\u2028é", "\x01"):
        row = validator.validate(
            2,
            ["c-1", PURPOSES[0], "given", "2026-01-01T00:00:00+00:00", "api", str(version.number), evidence],
        )
        assert isinstance(row, Row)
        assert row.evidence_json == canonical_json({"reference": evidence})
