"""BSSN internal notes never reach an operator: no page, export, e-mail or alert carries them."""

import pytest
from django.urls import reverse

from incidents import services
from incidents.models import CommentKind, Status
from tests.incidents.helpers import file_incident, pdf_upload

pytestmark = pytest.mark.django_db

NOTE = "INTERNAL-7f3a: operator's CISO is unreliable, escalate via the regulator"


def _operator_pages(incident) -> list[str]:
    slug, ref = incident.operator.slug, incident.reference
    return [
        reverse("accounts:dashboard", kwargs={"operator_slug": slug}),
        reverse("incidents:list", kwargs={"operator_slug": slug}),
        reverse("incidents:export", kwargs={"operator_slug": slug}),
        reverse("incidents:detail", kwargs={"operator_slug": slug, "reference": ref}),
        reverse("incidents:export_json", kwargs={"operator_slug": slug, "reference": ref}),
        reverse("incidents:report_edit", kwargs={"operator_slug": slug, "reference": ref}),
        reverse("incidents:report_detail", kwargs={"operator_slug": slug, "reference": ref, "number": 1}),
        reverse(
            "incidents:evidence_download",
            kwargs={"operator_slug": slug, "reference": ref, "evidence_id": incident.evidence.get().pk},
        ),
    ]


def _body(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode()


def test_internal_notes_never_reach_an_operator(
    client_for,
    op_admin,
    reporter,
    viewer,
    operator,
    analyst,
    supervisor,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        incident = file_incident(
            operator,
            reporter,
            severity="critical",
            personal_data_involved=True,
            personal_data_categories=["identity"],
            data_subjects_count=10,
        )
        services.add_evidence(incident=incident, actor=reporter, upload=pdf_upload())
        services.add_bssn_comment(incident=incident, actor=analyst, kind=CommentKind.NOTE, body=NOTE)
        services.add_bssn_comment(
            incident=incident, actor=analyst, kind=CommentKind.COMMENT, body="We are on it"
        )
        services.add_bssn_comment(
            incident=incident, actor=analyst, kind=CommentKind.REQUEST, body="Send logs"
        )
        services.add_operator_comment(incident=incident, actor=reporter, body="Logs attached")
        services.change_status(
            incident=incident, actor=supervisor, to_status=Status.CLOSED, reason="Contained"
        )
    assert incident.comments.filter(is_internal=True).count() == 1

    for user in (op_admin, reporter, viewer):
        client = client_for(user)
        for url in _operator_pages(incident):
            response = client.get(url, follow=True)
            assert response.status_code in (200, 403), url  # 403: a viewer on a writing page
            body = _body(response)
            assert "INTERNAL-7f3a" not in body, url
        detail = client.get(incident.get_absolute_url()).content.decode()
        assert "We are on it" in detail  # the visible conversation is there

    assert mailoutbox, "the flow sends e-mails"
    for message in mailoutbox:
        assert "INTERNAL-7f3a" not in message.body
        assert all("INTERNAL-7f3a" not in alt for alt, _type in message.alternatives)

    try:
        from portal.alerts.models import Alert
    except ImportError:
        return
    for alert in Alert.objects.all():
        assert "INTERNAL-7f3a" not in alert.body


def test_an_internal_note_sends_nothing_and_changes_no_status(
    operator, reporter, analyst, mailoutbox, django_capture_on_commit_callbacks
):
    incident = file_incident(operator, reporter)
    with django_capture_on_commit_callbacks(execute=True):
        services.add_bssn_comment(incident=incident, actor=analyst, kind=CommentKind.NOTE, body=NOTE)
    assert mailoutbox == []
    assert incident.status == Status.SUBMITTED


def test_operators_cannot_write_internal_notes(operator, reporter):
    from django.core.exceptions import PermissionDenied

    incident = file_incident(operator, reporter)
    with pytest.raises(PermissionDenied):
        services.add_bssn_comment(incident=incident, actor=reporter, kind=CommentKind.NOTE, body="sneaky")
