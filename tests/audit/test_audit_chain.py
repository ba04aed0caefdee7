import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from portal.audit.models import AuditEvent
from portal.audit.services import record, verify_chain


def _tamper(event_id: int) -> None:
    """Alter one row behind the application's back (trigger disabled on PostgreSQL)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_append_only")
        cursor.execute("UPDATE audit_auditevent SET action = 'auth.nothing_to_see' WHERE id = %s", [event_id])
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_auditevent_append_only")


@pytest.mark.django_db
def test_verify_audit_passes_on_an_intact_log_and_names_the_altered_event(operator, capsys):
    events = [record(action=f"test.step{i}", operator=operator) for i in range(5)]
    call_command("verify_audit")
    assert "intact: 5 events" in capsys.readouterr().out
    _tamper(events[2].pk)
    with pytest.raises(CommandError):
        call_command("verify_audit")
    err = capsys.readouterr().err
    assert f"seq={events[2].seq} event_id={events[2].pk}" in err
    assert [b.event_id for b in verify_chain()] == [events[2].pk]


@pytest.mark.django_db
def test_a_deleted_event_breaks_the_chain_at_the_gap(operator):
    events = [record(action=f"test.step{i}") for i in range(3)]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_append_only")
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [events[1].pk])
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_auditevent_append_only")
    assert [b.event_id for b in verify_chain()] == [events[2].pk]


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement", ["UPDATE audit_auditevent SET action = 'x'", "DELETE FROM audit_auditevent"]
)
def test_postgresql_refuses_raw_update_and_delete(statement):
    record(action="test.kept")
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    assert AuditEvent.objects.filter(action="test.kept").exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_form_one_valid_chain():
    def write(n: int) -> None:
        try:
            for i in range(15):
                record(action=f"test.thread{n}.{i}")
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert AuditEvent.objects.filter(action__startswith="test.thread").count() == 60
    assert list(verify_chain()) == []


@pytest.mark.django_db
def test_operator_admin_sees_only_their_organisations_events(client_for, op_admin, operator, other_operator):
    record(action="test.mine", operator=operator)
    record(action="test.theirs", operator=other_operator)
    page = client_for(op_admin).get(reverse("audit:operator_log", kwargs={"operator_slug": operator.slug}))
    assert b"test.mine" in page.content and b"test.theirs" not in page.content


@pytest.mark.django_db
def test_supervisor_reads_the_log_in_the_admin_but_cannot_change_it(staff_client, supervisor):
    event = record(action="test.visible")
    c = staff_client(supervisor)
    assert b"test.visible" in c.get("/admin/audit/auditevent/").content
    assert c.get(f"/admin/audit/auditevent/{event.pk}/delete/").status_code in (302, 403)
    assert c.post(f"/admin/audit/auditevent/{event.pk}/change/", {"action": "x"}).status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).action == "test.visible"
