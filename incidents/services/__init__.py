"""Every multi-step write on incidents, one module per concern.

Each public function is keyword-only and runs in one transaction: the domain rows,
the audit event, the alert-pipeline event and the e-mails to people (notices, in the
outbox of portal.alerts.notices) are written together; a worker sends them after commit.
Imports flow one way: base, content, notify → deadlines → lifecycle → filing,
conversation; evidence and reminders stand apart. This package re-exports the public
names so callers can write `services.submit_incident`.
"""

from ..permissions import CLOSE, EXTEND, INTERNAL_NOTE, REOPEN, TRIAGE, WAIVE
from .base import TransitionRefused
from .content import (
    DATETIME_FIELDS,
    DRAFT_REQUIRED,
    OPERATOR_FIELDS,
    SUBMIT_REQUIRED,
    from_json_value,
    report_data,
    snapshot,
    to_json_value,
    validate_content,
)
from .conversation import add_bssn_comment, add_operator_comment
from .deadlines import (
    confirm_notice,
    deadline_compliance,
    obligation_extend,
    refresh_next_due,
    sync_obligations,
    waive_obligation,
)
from .evidence import add_evidence, purge_expired_evidence, record_evidence_download
from .filing import (
    create_incident,
    next_reference,
    save_report_draft,
    submit_incident,
    submit_report,
    update_draft,
)
from .lifecycle import (
    BSSN_FIELDS,
    REQUEST_FROM,
    STAFF_TRANSITIONS,
    allowed_targets,
    assign,
    change_status,
    set_duplicate_of,
    staff_users_for_assignment,
    update_assessment,
)
from .observables import attach_observables, incidents_sharing, reported_elsewhere, shared_across_operators
from .reminders import send_due_reminders, send_overdue_notice, send_reminder

__all__ = [
    "BSSN_FIELDS",
    "CLOSE",
    "DATETIME_FIELDS",
    "DRAFT_REQUIRED",
    "EXTEND",
    "INTERNAL_NOTE",
    "OPERATOR_FIELDS",
    "REOPEN",
    "REQUEST_FROM",
    "STAFF_TRANSITIONS",
    "SUBMIT_REQUIRED",
    "TRIAGE",
    "WAIVE",
    "TransitionRefused",
    "add_bssn_comment",
    "add_evidence",
    "add_operator_comment",
    "allowed_targets",
    "assign",
    "change_status",
    "confirm_notice",
    "create_incident",
    "deadline_compliance",
    "from_json_value",
    "next_reference",
    "obligation_extend",
    "purge_expired_evidence",
    "record_evidence_download",
    "refresh_next_due",
    "report_data",
    "save_report_draft",
    "send_due_reminders",
    "set_duplicate_of",
    "send_overdue_notice",
    "send_reminder",
    "snapshot",
    "staff_users_for_assignment",
    "submit_incident",
    "submit_report",
    "sync_obligations",
    "to_json_value",
    "update_assessment",
    "update_draft",
    "validate_content",
    "waive_obligation",
]
__all__ += ["attach_observables", "incidents_sharing", "reported_elsewhere", "shared_across_operators"]
