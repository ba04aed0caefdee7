"""BSSN's side of the lifecycle: status transitions guarded by role, assignment, assessment."""

from collections.abc import Iterable

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.accounts.models import User
from portal.alerts.models import OperatorEventType
from portal.audit.services import record
from portal.audit.updates import update_and_audit

from .. import payloads, webhook_payloads
from ..models import CLOSING_STATUSES, Incident, Status, StatusChange
from ..permissions import CLOSE, REOPEN, TRIAGE, require_perm
from .base import TransitionRefused, emit_incident_event, emit_operator_event, locked
from .notify import mail_operator

_ACTIVE = (Status.SUBMITTED, Status.TRIAGE, Status.IN_PROGRESS, Status.AWAITING_OPERATOR)
# Transitions BSSN makes from the admin: (from, to) -> the permission it takes.
# Submitting, asking for information and answering have their own services.
STAFF_TRANSITIONS: dict[tuple[str, str], str] = {
    (Status.SUBMITTED, Status.TRIAGE): TRIAGE,
    (Status.SUBMITTED, Status.IN_PROGRESS): TRIAGE,
    (Status.TRIAGE, Status.IN_PROGRESS): TRIAGE,
    (Status.AWAITING_OPERATOR, Status.TRIAGE): TRIAGE,
    (Status.AWAITING_OPERATOR, Status.IN_PROGRESS): TRIAGE,
    **{(s, Status.RESOLVED): TRIAGE for s in _ACTIVE},
    **{(s, to): CLOSE for s in (*_ACTIVE, Status.RESOLVED) for to in CLOSING_STATUSES},
    **{(s, Status.TRIAGE): REOPEN for s in (Status.RESOLVED, *CLOSING_STATUSES)},
}
REQUEST_FROM = frozenset({Status.SUBMITTED, Status.TRIAGE, Status.IN_PROGRESS})


def record_transition(
    incident: Incident, to_status: str, *, actor: User, by_bssn: bool, reason: str, request=None
) -> StatusChange:
    """Move the (locked) incident to `to_status` and record who, when, from, to and why."""
    from_status = incident.status
    now = timezone.now()
    incident.status = to_status
    if to_status in CLOSING_STATUSES:
        incident.closed_at = now
    elif from_status in CLOSING_STATUSES:
        incident.closed_at = None
    if to_status != Status.DUPLICATE:
        incident.duplicate_of = None
    incident.save()
    change = StatusChange.objects.create(
        incident=incident,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        by_bssn=by_bssn,
        reason=reason,
        created_at=now,
    )
    record(
        action="incident.status",
        actor=actor,
        operator=incident.operator,
        target=incident,
        changes={"status": {"old": from_status, "new": to_status}, "reason": reason},
        request=request,
    )
    if to_status != Status.SUBMITTED:
        emit_incident_event(
            event_type="incident.status_changed",
            incident=incident,
            payload=payloads.status_changed(incident, change),
        )
    if by_bssn:
        emit_operator_event(
            event_type=OperatorEventType.STATUS_CHANGED,
            incident=incident,
            payload=webhook_payloads.status_changed(incident, change),
        )
    return change


def allowed_targets(*, incident: Incident, user: User) -> list[str]:
    """Return the statuses `user` may move `incident` to from the admin, in lifecycle order."""
    return [
        to for to in Status if (perm := STAFF_TRANSITIONS.get((incident.status, to))) and user.has_perm(perm)
    ]


def change_status(
    *,
    incident: Incident,
    actor: User,
    to_status: str,
    reason: str,
    duplicate_of: Incident | None = None,
    request=None,
) -> StatusChange:
    """Move an incident along the lifecycle on BSSN's behalf, guarded by role, with a reason."""
    reason = reason.strip()
    if not actor.is_staff:
        raise PermissionDenied(_("You are not allowed to do this."))
    with transaction.atomic():
        locked(incident)
        perm = STAFF_TRANSITIONS.get((incident.status, to_status))
        if perm is None:
            raise TransitionRefused(
                _("An incident cannot go from “%(from)s” to “%(to)s”.")
                % {
                    "from": Status(incident.status).label,
                    "to": Status(to_status).label if to_status in Status.values else to_status,
                }
            )
        require_perm(actor, perm)
        if not reason:
            raise ValidationError({"reason": _("Give a reason for the change.")})
        if to_status == Status.DUPLICATE:
            if duplicate_of is None or duplicate_of.pk == incident.pk or duplicate_of.is_draft:
                raise ValidationError({"duplicate_of": _("Name the original incident this one duplicates.")})
            incident.duplicate_of = duplicate_of
        change = record_transition(
            incident, to_status, actor=actor, by_bssn=True, reason=reason, request=request
        )
        mail_operator(incident, "status_changed", {"change": change})
    return change


def assign(*, incident: Incident, actor: User, assignee: User | None, request=None) -> Incident:
    """Assign (or unassign) a BSSN analyst."""
    require_perm(actor, TRIAGE)
    if assignee is not None and not (assignee.is_staff and assignee.is_active):
        raise ValidationError(_("Only active BSSN staff can be assigned."))
    with transaction.atomic():
        locked(incident)
        old = incident.assignee_id
        if old != (assignee.pk if assignee else None):
            incident.assignee = assignee
            incident.save(update_fields=["assignee", "updated_at"])
            record(
                action="incident.assign",
                actor=actor,
                operator=incident.operator,
                target=incident,
                changes={"assignee": {"old": old, "new": assignee.pk if assignee else None}},
                request=request,
            )
    return incident


BSSN_FIELDS = ("category", "bssn_severity", "tlp", "outcome")


def update_assessment(*, incident: Incident, actor: User, data: dict, request=None) -> list[str]:
    """Save BSSN's assessment fields (reclassification, severity, TLP, outcome) and the assignee."""
    require_perm(actor, "incidents.change_incident")
    with transaction.atomic():
        locked(incident)
        changes = update_and_audit(
            instance=incident,
            data=data,
            fields=BSSN_FIELDS,
            action="incident.assess",
            actor=actor,
            operator=incident.operator,
            request=request,
        )
        if "assignee" in data and data["assignee"] != incident.assignee:
            assign(incident=incident, actor=actor, assignee=data["assignee"], request=request)
            changes["assignee"] = True
    return list(changes)


def set_duplicate_of(*, incident: Incident, actor: User, original: Incident | None, request=None) -> None:
    """Name the original of a duplicate; an incident not yet a duplicate becomes one (it closes).

    Marking a duplicate is a closing transition, so it takes the supervisor's permission
    and is recorded in the status history with a reason naming the original.
    """
    if incident.status != Status.DUPLICATE:
        if original is None:
            return
        change_status(
            incident=incident,
            actor=actor,
            to_status=Status.DUPLICATE,
            reason=_("Duplicate of %(reference)s") % {"reference": original.reference},
            duplicate_of=original,
            request=request,
        )
        return
    require_perm(actor, CLOSE)
    if original is None or original.pk == incident.pk or original.is_draft:
        raise ValidationError({"duplicate_of": _("Name the original incident this one duplicates.")})
    with transaction.atomic():
        locked(incident)
        update_and_audit(
            instance=incident,
            data={"duplicate_of": original},
            fields=["duplicate_of"],
            action="incident.assess",
            actor=actor,
            operator=incident.operator,
            request=request,
            shown=lambda _field, value: value.reference if value else None,
        )


def staff_users_for_assignment() -> Iterable[User]:
    return User.objects.filter(is_staff=True, is_active=True).order_by("email")
