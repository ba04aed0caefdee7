"""The conversation on an incident: operator messages, BSSN messages, notes and requests for information."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from portal.accounts.models import User
from portal.alerts.models import OperatorEventType
from portal.audit.services import record

from .. import payloads, webhook_payloads
from ..models import REASON_ANSWERED, REASON_REQUESTED, Comment, CommentKind, Incident, Status
from ..permissions import INTERNAL_NOTE, TRIAGE, require_perm, require_writer
from .base import TransitionRefused, emit_incident_event, emit_operator_event, locked
from .lifecycle import REQUEST_FROM, record_transition
from .notify import mail_operator


def add_operator_comment(*, incident: Incident, actor: User, body: str, request=None) -> Comment:
    """Post the operator's message; while BSSN awaits information it is the answer and resumes the case."""
    require_writer(actor, incident.operator)
    body = body.strip()
    if not body:
        raise ValidationError({"body": _("Write a message.")})
    with transaction.atomic():
        locked(incident)
        if incident.is_draft or incident.is_closed:
            raise TransitionRefused(_("Messages can be sent only on a submitted, open incident."))
        answering = incident.status == Status.AWAITING_OPERATOR
        comment = Comment.objects.create(
            incident=incident,
            author=actor,
            body=body,
            kind=CommentKind.ANSWER if answering else CommentKind.COMMENT,
        )
        if answering:
            back_to = (
                incident.status_changes.filter(to_status=Status.AWAITING_OPERATOR)
                .order_by("-created_at", "-id")
                .values_list("from_status", flat=True)
                .first()
            ) or Status.TRIAGE
            record_transition(
                incident, back_to, actor=actor, by_bssn=False, reason=REASON_ANSWERED, request=request
            )
        record(
            action="incident.comment",
            actor=actor,
            operator=incident.operator,
            target=incident,
            changes={"kind": comment.kind},
            request=request,
        )
    return comment


def add_bssn_comment(
    *, incident: Incident, actor: User, body: str, kind: str = CommentKind.COMMENT, request=None
) -> Comment:
    """Post BSSN's message: a comment the operator sees, an internal note, or a request for information."""
    body = body.strip()
    if not body:
        raise ValidationError({"body": _("Write a message.")})
    perm = {CommentKind.COMMENT: TRIAGE, CommentKind.REQUEST: TRIAGE, CommentKind.NOTE: INTERNAL_NOTE}.get(
        kind
    )
    if perm is None:
        raise ValidationError({"kind": _("Choose what kind of message this is.")})
    require_perm(actor, perm)
    with transaction.atomic():
        locked(incident)
        if incident.is_draft:
            raise TransitionRefused(_("This incident has not been submitted."))
        if kind == CommentKind.REQUEST and incident.status not in REQUEST_FROM:
            raise TransitionRefused(
                _("Ask for information only while the incident is submitted, in triage or in progress.")
            )
        comment = Comment.objects.create(
            incident=incident,
            author=actor,
            by_bssn=True,
            kind=kind,
            body=body,
            is_internal=kind == CommentKind.NOTE,
        )
        record(
            action="incident.comment",
            actor=actor,
            operator=incident.operator,
            target=incident,
            changes={"kind": kind},
            request=request,
        )
        if kind == CommentKind.REQUEST:
            record_transition(
                incident,
                Status.AWAITING_OPERATOR,
                actor=actor,
                by_bssn=True,
                reason=REASON_REQUESTED,
                request=request,
            )
            emit_incident_event(
                event_type="incident.information_requested",
                incident=incident,
                payload=payloads.information_requested(incident, comment.created_at),
            )
            emit_operator_event(
                event_type=OperatorEventType.INFORMATION_REQUESTED,
                incident=incident,
                payload=webhook_payloads.information_requested(incident, comment),
            )
            mail_operator(incident, "information_requested", {"comment": comment})
        elif kind == CommentKind.COMMENT:
            emit_operator_event(
                event_type=OperatorEventType.MESSAGE,
                incident=incident,
                payload=webhook_payloads.message(incident, comment),
            )
            mail_operator(incident, "new_comment", {"comment": comment})
        # Internal notes: no e-mail, no event, never an operator page.
    return comment
