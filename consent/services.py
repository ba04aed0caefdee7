"""Multi-step writes and reads of privacy policies and the consent ledger.

Ledger writers take the operator's chain head row lock (`select_for_update`) inside
their transaction and compute each event's hash from the locked head, so two writers
at once still form one valid chain (DESIGN.md, "Chains and counters under concurrency").
"""

import hashlib
import hmac
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.audit.services import record
from portal.crypto import Kind, NormalisationError, blind_index

from .models import (
    GENESIS_HASH,
    ActorType,
    ConsentEvent,
    ConsentState,
    LedgerHead,
    PolicyStatus,
    PolicyVersion,
    Purpose,
    chain_hash,
    stop_processing_deadline,
)

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
        .values_list("state", "expires_at")
        .first()
    )
    if latest is None:
        return False
    state, expires_at = latest
    return state == ConsentState.GIVEN and (expires_at is None or expires_at > at)


# --- Privacy policies ----------------------------------------------------------------

POLICY_FIELDS = ("title", "text_id", "text_en", "effective_date", "change_summary")
PURPOSE_FIELDS = ("code", "description", "legal_basis", "data_categories", "specific_data", "retention",
                  "recipients", "withdrawal_method")


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
        record(action="consent.policy.create", actor=actor, operator=operator, target=version,
               changes={"number": number}, request=request)
    return version


def update_draft(
    *, version: PolicyVersion, actor, data: dict, request: HttpRequest | None = None
) -> PolicyVersion:
    """Save a draft's edited fields; a published version raises ImmutableError."""
    changes = {}
    for name in POLICY_FIELDS:
        old, new = getattr(version, name), data[name]
        if old != new:
            changes[name] = {"old": str(old)[:200], "new": str(new)[:200]}
            setattr(version, name, new)
    if changes:
        with transaction.atomic():
            version.save()
            record(action="consent.policy.update", actor=actor, operator=version.operator, target=version,
                   changes=changes, request=request)
    return version


def add_purpose(*, version: PolicyVersion, actor, data: dict, request: HttpRequest | None = None) -> Purpose:
    if version.purposes.filter(code=data["code"]).exists():
        raise ValidationError(_("This version already has a purpose with that code."))
    with transaction.atomic():
        purpose = Purpose.objects.create(version=version, **{f: data[f] for f in PURPOSE_FIELDS})
        record(action="consent.purpose.add", actor=actor, operator=version.operator, target=version,
               changes={"code": purpose.code, "legal_basis": purpose.legal_basis}, request=request)
    return purpose


def remove_purpose(*, purpose: Purpose, actor, request: HttpRequest | None = None) -> None:
    version = purpose.version
    with transaction.atomic():
        record(action="consent.purpose.remove", actor=actor, operator=version.operator, target=version,
               changes={"code": purpose.code}, request=request)
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
        previous = list(
            PolicyVersion.objects.select_for_update().filter(
                operator=version.operator, status=PolicyStatus.PUBLISHED
            )
        )
        for old in previous:
            old.status, old.retired_at = PolicyStatus.RETIRED, now
            old.save(update_fields=["status", "retired_at"])
        version.sha256 = version.compute_sha256()
        version.status = PolicyStatus.PUBLISHED
        version.published_at, version.published_by = now, actor
        version.save()
        record(action="consent.policy.publish", actor=actor, operator=version.operator, target=version,
               changes={"status": {"old": PolicyStatus.DRAFT, "new": PolicyStatus.PUBLISHED},
                        "sha256": version.sha256,
                        "retired": [old.number for old in previous]},
               request=request)
    return version


def retire_version(*, version: PolicyVersion, actor, request: HttpRequest | None = None) -> PolicyVersion:
    if not version.is_published:
        raise ValidationError(_("Only the published version can be retired."))
    with transaction.atomic():
        version.status, version.retired_at = PolicyStatus.RETIRED, timezone.now()
        version.save(update_fields=["status", "retired_at"])
        record(action="consent.policy.retire", actor=actor, operator=version.operator, target=version,
               changes={"status": {"old": PolicyStatus.PUBLISHED, "new": PolicyStatus.RETIRED}},
               request=request)
    return version


def current_policy(operator) -> PolicyVersion | None:
    return PolicyVersion.objects.filter(operator=operator, status=PolicyStatus.PUBLISHED).first()


# --- Appending to the ledger ---------------------------------------------------------


def lock_head(operator) -> LedgerHead:
    """Return the operator's chain head, row-locked until the transaction ends."""
    LedgerHead.objects.get_or_create(operator=operator)
    return LedgerHead.objects.select_for_update().get(operator=operator)


@dataclass
class NewEvent:
    subject_identifier: str
    purpose_code: str
    state: str
    method: str
    actor_type: str
    event_at: datetime
    policy_version_id: int
    expires_at: datetime | None = None
    evidence: dict = field(default_factory=dict)
    import_key: str = ""


def _build_event(new: NewEvent, *, operator, head: LedgerHead, recorded_by, recorded_at,
                 index: str, record_id: str) -> ConsentEvent:
    """Return the next unsaved event of the chain and advance `head` in memory."""
    stop_by = stop_processing_deadline(new.event_at) if new.state == ConsentState.WITHDRAWN else None
    seq = head.last_seq + 1
    canonical = ConsentEvent.canonical_values(
        operator_id=operator.pk, seq=seq, record_id=record_id, subject_index=index,
        purpose_code=new.purpose_code, policy_version_id=new.policy_version_id, state=new.state,
        method=new.method, actor_type=new.actor_type, recorded_by_id=recorded_by.pk if recorded_by else None,
        event_at=new.event_at, recorded_at=recorded_at, expires_at=new.expires_at,
        stop_processing_by=stop_by, evidence=new.evidence, import_key=new.import_key,
    )
    digest = chain_hash(head.last_hash, canonical)
    event = ConsentEvent(
        record_id=record_id, operator=operator, seq=seq, subject_identifier=new.subject_identifier.strip(),
        subject_index=index, purpose_code=new.purpose_code, policy_version_id=new.policy_version_id,
        state=new.state, method=new.method, actor_type=new.actor_type, recorded_by=recorded_by,
        event_at=new.event_at, recorded_at=recorded_at, expires_at=new.expires_at,
        stop_processing_by=stop_by, evidence=new.evidence, import_key=new.import_key,
        prev_hash=head.last_hash, hash=digest,
    )
    head.last_seq, head.last_hash = seq, digest
    return event


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
        raise ValidationError(_("Policy version %(number)s does not declare: %(codes)s")
                              % {"number": policy_version.number, "codes": ", ".join(sorted(unknown))})
    event_at = event_at or timezone.now()
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
            new = NewEvent(subject_identifier=subject_identifier, purpose_code=code, state=state,
                           method=method, actor_type=actor_type, event_at=event_at,
                           policy_version_id=policy_version.pk, expires_at=expires_at,
                           evidence=evidence or {})
            event = _build_event(new, operator=operator, head=head, recorded_by=actor,
                                 recorded_at=recorded_at, index=index, record_id=str(uuid.uuid4()))
            event.save(force_insert=True)
            events.append(event)
        LedgerHead.objects.filter(pk=head.pk).update(last_seq=head.last_seq, last_hash=head.last_hash)
        record(action="consent.record", actor=actor, operator=operator, target=events[0],
               changes={"state": state, "purposes": purpose_codes, "policy_version": policy_version.number,
                        "events": [e.seq for e in events]},
               request=request)
    return events


# --- Reading the ledger --------------------------------------------------------------


def current_states(*, operator, subject_identifier: str) -> list[ConsentEvent]:
    """Return the subject's latest event per purpose (ranked by the database)."""
    try:
        index = subject_index(subject_identifier)
    except NormalisationError:
        return []
    return list(
        ConsentEvent.objects.for_operator(operator).for_subject(index).latest_per_purpose()
        .select_related("policy_version").order_by("purpose_code")
    )


@dataclass
class SubjectLookup:
    subject_identifier: str
    current: list[ConsentEvent]
    history: list[ConsentEvent]


def lookup_subject(*, operator, actor, subject_identifier: str,
                   request: HttpRequest | None = None) -> SubjectLookup:
    """Return a subject's current state per purpose and full history; audit the view.

    The page shows the decrypted identifier, so every lookup is an audited view of
    personal data (the audit entry holds a prefix of the blind index, never the value).
    """
    try:
        index = subject_index(subject_identifier)
    except NormalisationError as exc:
        raise ValidationError(_("Enter the subject identifier.")) from exc
    history = list(
        ConsentEvent.objects.for_operator(operator).for_subject(index)
        .select_related("policy_version", "recorded_by").order_by("-event_at", "-seq")
    )
    current = current_states(operator=operator, subject_identifier=subject_identifier)
    record(action="consent.lookup", actor=actor, operator=operator,
           changes={"subject_index": index[:16], "events": len(history)}, request=request)
    return SubjectLookup(subject_identifier=subject_identifier.strip(), current=current, history=history)


@dataclass(frozen=True)
class LedgerBreak:
    operator_id: int
    seq: int
    event_id: int
    record_id: str
    reason: str


def verify_ledger(*, operator=None, deep: bool = False) -> Iterator[LedgerBreak]:
    """Yield the first break of each operator's chain (or of `operator`'s); nothing if intact.

    `deep` also decrypts each identifier and checks it against its blind index, which
    catches a ciphertext swapped in from another row (the hash covers the index).
    """
    if operator is not None:
        operator_ids = [operator.pk]
    else:
        operator_ids = list(
            ConsentEvent.objects.order_by().values_list("operator_id", flat=True).distinct()
        )
    for operator_id in sorted(operator_ids):
        events = ConsentEvent.objects.filter(operator_id=operator_id).order_by("seq")
        if not deep:
            events = events.defer("subject_identifier")
        prev_hash, expected_seq = GENESIS_HASH, 1
        broken = None
        for event in events.iterator(chunk_size=5000):
            if event.seq != expected_seq:
                broken = (event, f"expected sequence {expected_seq}")
            elif event.prev_hash != prev_hash:
                broken = (event, "previous hash does not match")
            elif event.compute_hash() != event.hash:
                broken = (event, "content does not match its hash")
            elif deep and subject_index(event.subject_identifier) != event.subject_index:
                broken = (event, "identifier does not match its blind index")
            if broken:
                break
            prev_hash, expected_seq = event.hash, expected_seq + 1
        if broken is None:
            head = LedgerHead.objects.filter(operator_id=operator_id).first()
            last = expected_seq - 1
            if head is not None and (head.last_seq != last or head.last_hash != prev_hash):
                yield LedgerBreak(operator_id, last + 1, 0, "", "events missing at the end of the chain")
            continue
        event, reason = broken
        yield LedgerBreak(operator_id, event.seq, event.pk, str(event.record_id), reason)


def ledger_size(operator) -> int:
    return ConsentEvent.objects.for_operator(operator).aggregate(n=Max("seq"))["n"] or 0


# --- Receipts and export -------------------------------------------------------------

RECEIPT_SCHEMA = "ISO/IEC TS 27560:2023"


def receipt(event: ConsentEvent) -> dict:
    """Return a consent receipt for one event, with ISO/IEC TS 27560:2023 field names."""
    version = event.policy_version
    purpose = version.purposes.filter(code=event.purpose_code).first()
    site = settings.SITE_URL.rstrip("/")
    return {
        "schema_version": RECEIPT_SCHEMA,
        "record_id": str(event.record_id),
        "receipt_issued": timezone.now().isoformat(),
        "pii_principal_id": event.subject_identifier,
        "pii_controller": {"name": event.operator.name, "id": event.operator.slug,
                           "contact": event.operator.contact_email},
        "jurisdiction": "ID",
        "notice": {
            "policy_reference": site + version.get_public_url(),
            "policy_version": version.number,
            "policy_hash": {"algorithm": "sha256", "value": version.sha256},
            "language": version.languages(),
        },
        "purposes": [{
            "purpose_id": event.purpose_code,
            "purpose": purpose.description if purpose else "",
            "lawful_basis": purpose.legal_basis if purpose else "",
            "pii_categories": purpose.data_category_list() if purpose else [],
            "specific_pii": purpose.specific_data if purpose else [],
            "retention": purpose.retention if purpose else "",
            "recipients": purpose.recipients if purpose else "",
            "withdrawal_method": purpose.withdrawal_method if purpose else "",
        }],
        "collection_method": event.method,
        "consent_actor": event.actor_type,
        "state": event.state,
        "event": [{
            "event_time": event.event_at.isoformat(),
            "event_type": event.state,
            "event_state": event.effective_state(),
            "recorded_time": event.recorded_at.isoformat(),
        }],
        "expiry": event.expires_at.isoformat() if event.expires_at else None,
        "stop_processing_by": event.stop_processing_by.isoformat() if event.stop_processing_by else None,
        "evidence": event.evidence,
        "integrity": {"ledger_sequence": event.seq, "prev_hash": event.prev_hash, "hash": event.hash},
    }


def audit_receipt(*, event: ConsentEvent, actor, request: HttpRequest | None = None) -> None:
    record(action="consent.receipt.download", actor=actor, operator=event.operator, target=event,
           request=request)


EXPORT_COLUMNS = ["record_id", "seq", "subject_id", "purpose", "state", "event_time", "recorded_time",
                  "method", "actor", "policy_version", "expires_at", "stop_processing_by", "hash"]


def export_rows(*, operator) -> Iterator[dict]:
    """Yield every event of `operator` as a flat dict, in chain order, decrypting as it goes."""
    versions = dict(PolicyVersion.objects.for_operator(operator).values_list("pk", "number"))
    events = ConsentEvent.objects.for_operator(operator).order_by("seq")
    for e in events.iterator(chunk_size=2000):
        yield {
            "record_id": str(e.record_id), "seq": e.seq, "subject_id": e.subject_identifier,
            "purpose": e.purpose_code, "state": e.state, "event_time": e.event_at.isoformat(),
            "recorded_time": e.recorded_at.isoformat(), "method": e.method, "actor": e.actor_type,
            "policy_version": versions.get(e.policy_version_id),
            "expires_at": e.expires_at.isoformat() if e.expires_at else "",
            "stop_processing_by": e.stop_processing_by.isoformat() if e.stop_processing_by else "",
            "hash": e.hash,
        }


def audit_export(*, operator, actor, fmt: str, request: HttpRequest | None = None) -> None:
    record(action="consent.export", actor=actor, operator=operator, changes={"format": fmt},
           request=request)


def keyed_digest(purpose: str, data: bytes) -> str:
    """Return a keyed HMAC-SHA256 (never a plain hash: files and rows hold identifiers)."""
    key = settings.BLIND_INDEX_KEY.encode()
    return hmac.new(key, purpose.encode() + b":" + data, hashlib.sha256).hexdigest()
