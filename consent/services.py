"""Multi-step writes and reads of privacy policies and the consent ledger.

The chain itself (head lock, next event, checkpoints, verification) is in
`consent/ledger.py`; `lock_head` and `verify_ledger` are re-exported here for callers
that still import them from this module.
"""

import logging
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.audit.services import record
from portal.audit.updates import update_and_audit
from portal.crypto import Kind, NormalisationError, blind_index

from . import withdrawals

# Re-exported: the importer and older callers import these from here.
from .ledger import LedgerBreak, event_is_sound, lock_head, next_event, save_head, verify_ledger  # noqa: F401
from .models import (
    CANONICAL_FIELDS,
    ActorType,
    ConsentEvent,
    ConsentState,
    PolicyStatus,
    PolicyVersion,
    Purpose,
)
from .receipts import RECEIPT_SCHEMA, receipt  # noqa: F401  (re-exported)

logger = logging.getLogger(__name__)
SEQ_AT = CANONICAL_FIELDS.index("seq")
STATE_AT = CANONICAL_FIELDS.index("state")
EXPIRES_AT = CANONICAL_FIELDS.index("expires_at")

# --- Subject identifiers -----------------------------------------------------------


def subject_index(subject_identifier: str) -> str:
    """Return the blind index of an operator's subject identifier (raises NormalisationError)."""
    value = subject_identifier.strip()
    if not value:
        raise NormalisationError("empty identifier")
    return blind_index(Kind.IDENTIFIER, value)


def mask_identifier(value: str) -> str:
    """Return `value` with all but its first two and last two characters hidden."""
    if len(value) <= 4:
        return "•" * len(value)
    return value[:2] + "•" * (len(value) - 4) + value[-2:]


# --- The contract used by the suspected-cases app ------------------------------------


def has_current_consent(
    *, operator, subject_identifier: str, purpose_code: str, at: datetime | None = None
) -> bool:
    """Return True when the subject's latest event for the purpose is "given", unexpired.

    The subject is found by blind index, so nothing is decrypted. Events after `at`
    (default: now) are ignored, so the answer is the state as it was at that time.
    A "given" event whose content no longer gives its hash, or whose hash is not the
    one the checkpoint store witnessed, counts as no consent (and is logged).
    """
    at = at or timezone.now()
    try:
        index = subject_index(subject_identifier)
    except NormalisationError:
        return False
    latest = (
        ConsentEvent.objects.filter(
            operator=operator, subject_index=index, purpose_code=purpose_code, event_at__lte=at
        )
        .order_by("-event_at", "-seq")
        .values_list(*CANONICAL_FIELDS, "prev_hash", "hash")
        .first()
    )
    if latest is None:
        return False
    values, prev_hash, stored_hash = latest[:-2], latest[-2], latest[-1]
    state, expires_at = values[STATE_AT], values[EXPIRES_AT]
    if state != ConsentState.GIVEN or (expires_at is not None and expires_at <= at):
        return False
    # A "given" that was rewritten in the database (its hash, or the leaf the checkpoint
    # store witnessed, disagrees) is not consent.
    if not event_is_sound(
        operator_id=operator.pk, values=values, prev_hash=prev_hash, stored_hash=stored_hash
    ):
        logger.error("consent event %s of operator %s fails its integrity check", values[SEQ_AT], operator.pk)
        return False
    return True


# --- Privacy policies ----------------------------------------------------------------

POLICY_FIELDS = ("title", "text_id", "text_en", "effective_date", "change_summary")
PURPOSE_FIELDS = (
    "code",
    "description",
    "legal_basis",
    "data_categories",
    "specific_data",
    "retention",
    "recipients",
    "withdrawal_method",
)


def create_policy_version(
    *, operator, actor, data: dict, request: HttpRequest | None = None
) -> PolicyVersion:
    """Create a draft version, copying the purposes of the latest version if there is one."""
    with transaction.atomic():
        # Lock the operator's versions so two drafts never get the same number.
        latest = (
            PolicyVersion.objects.select_for_update().filter(operator=operator).order_by("-number").first()
        )
        number = (latest.number if latest else 0) + 1
        version = PolicyVersion.objects.create(
            operator=operator, number=number, created_by=actor, **{f: data[f] for f in POLICY_FIELDS}
        )
        if latest is not None:
            for purpose in latest.purposes.all():
                Purpose.objects.create(version=version, **{f: getattr(purpose, f) for f in PURPOSE_FIELDS})
        record(
            action="consent.policy.create",
            actor=actor,
            operator=operator,
            target=version,
            changes={"number": number},
            request=request,
        )
    return version


def update_draft(
    *, version: PolicyVersion, actor, data: dict, request: HttpRequest | None = None
) -> PolicyVersion:
    """Save a draft's edited fields; a published version raises ImmutableError."""
    update_and_audit(
        instance=version,
        data={name: data[name] for name in POLICY_FIELDS},
        fields=POLICY_FIELDS,
        action="consent.policy.update",
        actor=actor,
        operator=version.operator,
        request=request,
        shown=lambda _name, value: str(value)[:200],
    )
    return version


def add_purpose(*, version: PolicyVersion, actor, data: dict, request: HttpRequest | None = None) -> Purpose:
    if version.purposes.filter(code=data["code"]).exists():
        raise ValidationError(_("This version already has a purpose with that code."))
    with transaction.atomic():
        purpose = Purpose.objects.create(version=version, **{f: data[f] for f in PURPOSE_FIELDS})
        record(
            action="consent.purpose.add",
            actor=actor,
            operator=version.operator,
            target=version,
            changes={"code": purpose.code, "legal_basis": purpose.legal_basis},
            request=request,
        )
    return purpose


def remove_purpose(*, purpose: Purpose, actor, request: HttpRequest | None = None) -> None:
    version = purpose.version
    with transaction.atomic():
        record(
            action="consent.purpose.remove",
            actor=actor,
            operator=version.operator,
            target=version,
            changes={"code": purpose.code},
            request=request,
        )
        purpose.delete()


def publish_version(*, version: PolicyVersion, actor, request: HttpRequest | None = None) -> PolicyVersion:
    """Publish a draft: freeze it with the sha256 of its canonical text; retire the previous one."""
    if not version.is_draft:
        raise ValidationError(_("Only a draft can be published."))
    if not version.languages():
        raise ValidationError(_("Write the policy text in at least one language before publishing."))
    if not version.purposes.exists():
        raise ValidationError(_("Declare at least one purpose before publishing."))
    now = timezone.now()
    with transaction.atomic():
        # Every version of the organisation, locked in one order: two publishes at the
        # same moment take turns (the later one retires the earlier), and a draft that
        # another request published meanwhile is refused below, not published twice.
        list(
            PolicyVersion.objects.select_for_update()
            .filter(operator=version.operator)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if PolicyVersion.objects.get(pk=version.pk).status != PolicyStatus.DRAFT:
            raise ValidationError(_("Only a draft can be published."))
        previous = list(
            PolicyVersion.objects.filter(operator=version.operator, status=PolicyStatus.PUBLISHED)
        )
        for old in previous:
            old.status, old.retired_at = PolicyStatus.RETIRED, now
            old.save(update_fields=["status", "retired_at"])
        version.sha256 = version.compute_sha256()
        version.status = PolicyStatus.PUBLISHED
        version.published_at, version.published_by = now, actor
        version.save()
        record(
            action="consent.policy.publish",
            actor=actor,
            operator=version.operator,
            target=version,
            changes={
                "status": {"old": PolicyStatus.DRAFT, "new": PolicyStatus.PUBLISHED},
                "sha256": version.sha256,
                "retired": [old.number for old in previous],
            },
            request=request,
        )
    return version


def retire_version(*, version: PolicyVersion, actor, request: HttpRequest | None = None) -> PolicyVersion:
    if not version.is_published:
        raise ValidationError(_("Only the published version can be retired."))
    with transaction.atomic():
        version.status, version.retired_at = PolicyStatus.RETIRED, timezone.now()
        version.save(update_fields=["status", "retired_at"])
        record(
            action="consent.policy.retire",
            actor=actor,
            operator=version.operator,
            target=version,
            changes={"status": {"old": PolicyStatus.PUBLISHED, "new": PolicyStatus.RETIRED}},
            request=request,
        )
    return version


def current_policy(operator) -> PolicyVersion | None:
    return PolicyVersion.objects.filter(operator=operator, status=PolicyStatus.PUBLISHED).first()


# --- Appending to the ledger ---------------------------------------------------------


def record_consent(
    *,
    operator,
    actor,
    subject_identifier: str,
    purpose_codes: Iterable[str],
    state: str,
    policy_version: PolicyVersion,
    method: str,
    actor_type: str = ActorType.SUBJECT,
    event_at: datetime | None = None,
    expires_at: datetime | None = None,
    evidence: dict | None = None,
    request: HttpRequest | None = None,
) -> list[ConsentEvent]:
    """Append one event per purpose for a subject, chained, and audit it.

    The policy version must be this operator's, published or retired (never a draft:
    a subject cannot have been shown one), and declare every purpose.
    """
    purpose_codes = list(dict.fromkeys(purpose_codes))
    if policy_version.operator_id != operator.pk or policy_version.is_draft:
        raise ValidationError(_("Choose a published version of your privacy policy."))
    if not purpose_codes:
        raise ValidationError(_("Choose at least one purpose."))
    unknown = set(purpose_codes) - policy_version.purpose_codes()
    if unknown:
        raise ValidationError(
            _("Policy version %(number)s does not declare: %(codes)s")
            % {"number": policy_version.number, "codes": ", ".join(sorted(unknown))}
        )
    event_at = event_at or timezone.now()
    if event_at > timezone.now() + timedelta(minutes=10):
        raise ValidationError(_("The event time is in the future."))
    if expires_at is not None and expires_at <= event_at:
        raise ValidationError(_("The expiry must be after the event time."))
    try:
        index = subject_index(subject_identifier)
    except NormalisationError as exc:
        raise ValidationError(_("Enter the subject identifier.")) from exc
    recorded_at = timezone.now()
    with transaction.atomic():
        head = lock_head(operator)
        events = []
        for code in purpose_codes:
            event = next_event(
                head=head,
                record_id=uuid.uuid4(),
                operator=operator,
                subject_identifier=subject_identifier.strip(),
                subject_index=index,
                purpose_code=code,
                policy_version=policy_version,
                state=state,
                method=method,
                actor_type=actor_type,
                recorded_by=actor,
                event_at=event_at,
                recorded_at=recorded_at,
                expires_at=expires_at,
                evidence=evidence or {},
            )
            event.save(force_insert=True)
            events.append(event)
        save_head(head)
        if state == ConsentState.WITHDRAWN:
            # UU 27/2022 Pasal 40: the withdrawal starts the 3 x 24 h clock to stop processing.
            withdrawals.processing_stops_open(events=events)
        record(
            action="consent.record",
            actor=actor,
            operator=operator,
            target=events[0],
            changes={
                "state": state,
                "purposes": purpose_codes,
                "policy_version": policy_version.number,
                "events": [e.seq for e in events],
            },
            request=request,
        )
    return events


# --- Reading the ledger --------------------------------------------------------------


# The latest event per purpose of one subject, ranked by the database (a window
# function, PostgreSQL and SQLite alike) and served by the index consent_event_subject.
# Written as SQL because this is the hot read: compiling the equivalent ORM query
# (ConsentEventQuerySet.latest_per_purpose) costs more than running it.
CURRENT_STATE_SQL = """
SELECT e.record_id, e.operator_id, e.seq, e.subject_index, e.purpose_code, e.policy_version_id,
       e.state, e.method, e.actor_type, e.recorded_by_id, e.event_at, e.recorded_at, e.expires_at,
       e.stop_processing_by, e.evidence, e.import_key, e.prev_hash, e.hash, v.number AS policy_number
FROM (
    SELECT c.*, ROW_NUMBER() OVER (
        PARTITION BY c.purpose_code ORDER BY c.event_at DESC, c.seq DESC
    ) AS position
    FROM consent_consentevent c
    WHERE c.operator_id = %s AND c.subject_index = %s
) e
JOIN consent_policyversion v ON v.id = e.policy_version_id
WHERE e.position = 1
ORDER BY e.purpose_code
"""


def current_states(*, operator, subject_identifier: str) -> list[ConsentEvent]:
    """Return the subject's latest event per purpose, each with `policy_number`."""
    try:
        index = subject_index(subject_identifier)
    except NormalisationError:
        return []
    return list(ConsentEvent.objects.raw(CURRENT_STATE_SQL, [operator.pk, index]))


@dataclass
class SubjectLookup:
    subject_identifier: str
    current: list[ConsentEvent]
    history: list[ConsentEvent]


def lookup_subject(
    *, operator, actor, subject_identifier: str, request: HttpRequest | None = None
) -> SubjectLookup:
    """Return a subject's current state per purpose and full history; audit the view.

    The page shows the decrypted identifier, so every lookup is an audited view of
    personal data (the audit entry holds a prefix of the blind index, never the value).
    """
    try:
        index = subject_index(subject_identifier)
    except NormalisationError as exc:
        raise ValidationError(_("Enter the subject identifier.")) from exc
    history = list(
        ConsentEvent.objects.for_operator(operator)
        .for_subject(index)
        .select_related("policy_version", "recorded_by")
        .order_by("-event_at", "-seq")
    )
    current = current_states(operator=operator, subject_identifier=subject_identifier)
    record(
        action="consent.lookup",
        actor=actor,
        operator=operator,
        changes={"subject_index": index[:16], "events": len(history)},
        request=request,
    )
    return SubjectLookup(subject_identifier=subject_identifier.strip(), current=current, history=history)


def ledger_size(operator) -> int:
    return ConsentEvent.objects.for_operator(operator).aggregate(n=Max("seq"))["n"] or 0


# --- Receipts and export -------------------------------------------------------------


def audit_receipt(*, event: ConsentEvent, actor, request: HttpRequest | None = None) -> None:
    record(
        action="consent.receipt.download", actor=actor, operator=event.operator, target=event, request=request
    )


EXPORT_COLUMNS = [
    "record_id",
    "seq",
    "subject_id",
    "purpose",
    "state",
    "event_time",
    "recorded_time",
    "method",
    "actor",
    "policy_version",
    "expires_at",
    "stop_processing_by",
    "hash",
]


def export_rows(*, operator) -> Iterator[dict]:
    """Yield every event of `operator` as a flat dict, in chain order, decrypting as it goes."""
    versions = dict(PolicyVersion.objects.for_operator(operator).values_list("pk", "number"))
    events = ConsentEvent.objects.for_operator(operator).order_by("seq")
    # Once processing has stopped after a withdrawal, the portal exports no identity for it.
    purged = withdrawals.purged_identities(operator=operator)
    for e in events.iterator(chunk_size=2000):
        yield {
            "record_id": str(e.record_id),
            "seq": e.seq,
            "subject_id": "" if withdrawals.is_purged(purged, e) else e.subject_identifier,
            "purpose": e.purpose_code,
            "state": e.state,
            "event_time": e.event_at.isoformat(),
            "recorded_time": e.recorded_at.isoformat(),
            "method": e.method,
            "actor": e.actor_type,
            "policy_version": versions.get(e.policy_version_id),
            "expires_at": e.expires_at.isoformat() if e.expires_at else "",
            "stop_processing_by": e.stop_processing_by.isoformat() if e.stop_processing_by else "",
            "hash": e.hash,
        }


def audit_export(*, operator, actor, fmt: str, request: HttpRequest | None = None) -> None:
    record(action="consent.export", actor=actor, operator=operator, changes={"format": fmt}, request=request)
