"""Multi-step writes for suspected-case flags: flag, correct, withdraw, forward, purge.

Forwarding follows minimal disclosure: the alert carries codes, not people. The
queued alert never holds an identity. Each time a delivery leaves (every send and
retry) `data_for_send` adds the identity from the vault only if the basis holds at
that moment: the data subject's current consent in the consent ledger, or the
explicit legal basis the operator recorded for this flag (UU 27/2022 Pasal 20(2)).
A withdrawal of consent, of the flag or of the recorded basis therefore stops the
identity leaving at once, retries included. Each queued alert leaves a Disclosure row
per recipient (what it is meant to carry) and each attempt one more (what it carried).
"""

import hashlib
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.alerts.disclosure import Prepared
from portal.alerts.services import emit_event
from portal.audit.services import record
from portal.crypto import Kind, blind_index

from . import rules
from .models import (
    AntigenResult,
    CaseDefinition,
    CaseFlag,
    CaseIdentity,
    Classification,
    Disclosure,
    DisclosureStage,
    FlagStatus,
    IdentityBasis,
)

logger = logging.getLogger(__name__)

FLAGGED = "suspected_case.flagged"
WITHDRAWN = "suspected_case.withdrawn"
CORRECTED = "suspected_case.corrected"
SCHEMA_VERSION = 1
DUPLICATE_WINDOW = timedelta(days=30)
# The facts a correction may change; identity and consultation reference are not among them.
CORRECTABLE_FIELDS = (
    "definition",
    "symptoms",
    "onset_date",
    "epidemiological",
    "sari",
    "antigen_result",
    "province",
    "regency_code",
    "regency_name",
    "age_band",
    "sex",
)


def local_today(operator) -> date:
    """Return today's date in the operator's time zone (the day a reporter sees)."""
    return timezone.now().astimezone(ZoneInfo(operator.timezone)).date()


def facts_from(data: dict, *, as_of: date) -> rules.Facts:
    """Return the evaluator's facts from cleaned form data."""
    return rules.Facts(
        symptoms=frozenset(data.get("symptoms") or ()),
        epidemiological=frozenset(data.get("epidemiological") or ()),
        sari=bool(data.get("sari")),
        antigen_positive=data.get("antigen_result") == AntigenResult.POSITIVE,
        onset_date=data.get("onset_date"),
        as_of=as_of,
    )


def classify(*, definition: CaseDefinition, data: dict, as_of: date) -> rules.Evaluation:
    """Return what `definition` says about the facts in `data` on `as_of`."""
    return definition.evaluate(facts_from(data, as_of=as_of))


def consultation_index(operator, reference: str) -> str:
    """Return the keyed index of an operator's consultation reference (scoped to the operator)."""
    return blind_index(Kind.IDENTIFIER, f"{operator.pk}:{reference}") if reference else ""


def _has_consent(*, operator, subject_identifier: str) -> bool:
    if not subject_identifier:
        return False
    from consent.models import SHARE_IDENTITY_WITH_HEALTH_AUTHORITIES
    from consent.services import has_current_consent

    return has_current_consent(
        operator=operator,
        subject_identifier=subject_identifier,
        purpose_code=SHARE_IDENTITY_WITH_HEALTH_AUTHORITIES,
    )


# --- Payloads -------------------------------------------------------------------


def _base_payload(flag: CaseFlag, event_type: str) -> dict:
    return {
        "schema": f"{event_type}/{SCHEMA_VERSION}",
        "flag_id": str(flag.uid),
        "revision": flag.revision,
        "operator": {"slug": flag.operator.slug, "name": flag.operator.name},
        "recontact_reference": flag.recontact_ref,
    }


def flag_payload(flag: CaseFlag, *, event_type: str = FLAGGED, identity: dict | None = None) -> dict:
    """Return the minimal-disclosure payload of a flag: codes, not people.

    `identity` (name, phone, NIK, address that hold a value) is added only when the
    caller established consent or a recorded legal basis.
    """
    payload = _base_payload(flag, event_type)
    payload.update(
        {
            "classification": flag.classification,
            # Every class met (e.g. A and B for a hospitalised SARI patient under 2022.1).
            "classifications": list(flag.classes or [flag.classification]),
            "case_definition": flag.definition.code,
            "symptoms": sorted(flag.symptoms),
            "onset_date": flag.onset_date.isoformat() if flag.onset_date else None,
            "province": flag.province,
            "regency": {"code": flag.regency_code, "name": flag.regency_name}
            if (flag.regency_code or flag.regency_name)
            else None,
            "age_band": flag.age_band,
            "sex": flag.sex,
        }
    )
    if identity:
        payload["identity"] = dict(identity)
    return payload


def payload_fields(payload: dict, prefix: str = "") -> list[str]:
    """Return the dotted names of every field the payload carries (e.g. identity.nik)."""
    names = []
    for key, value in payload.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and key in ("identity", "regency"):
            names.extend(payload_fields(value, prefix=f"{name}."))
        else:
            names.append(name)
    return sorted(names)


def _forward(
    *, flag: CaseFlag, event_type: str, payload: dict, basis: str = "", identity_fields: list[str] = ()
) -> None:
    """Emit the alert (outbox, without identity) and record, per recipient authority, what it is to carry.

    `identity_fields` are the identity fields the alert is meant to carry if the basis
    still holds when it leaves (they are added then, from the vault).
    """
    alert = emit_event(
        event_type=event_type, operator=flag.operator, payload=payload, province=flag.province, subject=flag
    )
    fields = sorted([*payload_fields(payload), *(f"identity.{name}" for name in identity_fields)])
    identity_included = bool(identity_fields)
    recipients: dict[str, str] = {}
    for delivery in alert.deliveries.select_related("authority").order_by("pk"):
        recipients.setdefault(delivery.authority.code, delivery.authority.name)
    if not recipients:
        recipients[""] = _("No authority (no routing rule matched)")
    Disclosure.objects.bulk_create(
        Disclosure(
            flag=flag,
            event_type=event_type,
            alert_id=alert.pk,
            authority_code=code,
            recipient=name,
            fields=fields,
            identity_included=identity_included,
            basis=basis if identity_included else "",
        )
        for code, name in recipients.items()
    )


# --- Flagging -------------------------------------------------------------------


@dataclass(frozen=True)
class IdentityInput:
    full_name: str = ""
    phone: str = ""
    nik: str = ""
    address: str = ""
    subject_identifier: str = ""

    @property
    def is_empty(self) -> bool:
        return not (self.full_name or self.phone or self.nik or self.address)


def _lock_person(*indexes: str) -> None:
    """Make flags of the same person (by NIK or consultation index) take turns, on PostgreSQL.

    Two flags committed at the same moment would each miss the other as a duplicate; with
    a transaction-scoped advisory lock per index, the second waits for the first to
    commit and then finds it. (SQLite runs one writer at a time already.)
    """
    if connection.vendor != "postgresql":
        return
    keys = sorted(
        {int.from_bytes(hashlib.sha256(index.encode()).digest()[:8], "big", signed=True) for index in indexes}
    )
    with connection.cursor() as cursor:
        for key in keys:  # one order everywhere: no deadlock between two flags
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def _find_duplicate(
    *, operator, nik_index: str, consultation_ref_index: str, since: datetime
) -> CaseFlag | None:
    """Return the latest active flag for the same person within the window, by keyed indexes only."""
    candidates = CaseFlag.objects.active().filter(created_at__gte=since)
    found = None
    if nik_index:
        found = candidates.filter(identity__nik_index=nik_index).order_by("-created_at").first()
    if found is None and consultation_ref_index:
        found = (
            candidates.filter(operator=operator, consultation_ref_index=consultation_ref_index)
            .order_by("-created_at")
            .first()
        )
    return found


@transaction.atomic
def flag_case(*, operator, actor, data: dict, identity: IdentityInput, request=None) -> CaseFlag:
    """Record a suspected case, link possible duplicates, and forward it with minimal disclosure.

    Raises ValidationError when the facts do not meet the chosen case definition or
    the operator is not a healthtech operator; nothing is saved then.
    """
    if not operator.is_healthtech:
        raise ValidationError(_("Only healthtech operators can flag suspected cases."))
    definition: CaseDefinition = data["definition"]
    now = timezone.now()
    evaluation = classify(definition=definition, data=data, as_of=local_today(operator))
    if not evaluation.meets_definition:
        raise ValidationError(_("These facts do not meet the case definition, so there is nothing to flag."))

    nik_index = blind_index(Kind.NIK, identity.nik) if identity.nik else ""
    consultation_ref = data.get("consultation_ref", "")
    consref_index = consultation_index(operator, consultation_ref)
    _lock_person(*(f"case-flag:{index}" for index in (nik_index, consref_index) if index))
    duplicate_of = _find_duplicate(
        operator=operator,
        nik_index=nik_index,
        consultation_ref_index=consref_index,
        since=now - DUPLICATE_WINDOW,
    )

    share_basis = ""
    legal_basis_reason = ""
    if not identity.is_empty:
        if data.get("share_identity"):
            # Kept even when consent exists too: the recorded basis outlives a withdrawal of consent.
            legal_basis_reason = data.get("share_reason", "")
        if _has_consent(operator=operator, subject_identifier=identity.subject_identifier):
            share_basis = IdentityBasis.CONSENT
        elif legal_basis_reason:
            share_basis = IdentityBasis.LEGAL_BASIS

    flag = CaseFlag.objects.create(
        operator=operator,
        definition=definition,
        classification=evaluation.classification,
        classes=evaluation.matched_classes,
        evaluation={
            "classes": evaluation.matched_classes,
            "criteria": evaluation.matched_criteria,
            "facts": evaluation.matched_facts,
        },
        symptoms=sorted(data.get("symptoms") or []),
        onset_date=data.get("onset_date"),
        epidemiological=sorted(data.get("epidemiological") or []),
        sari=bool(data.get("sari")),
        antigen_result=data.get("antigen_result") or AntigenResult.NOT_DONE,
        province=data["province"],
        regency_code=data.get("regency_code", ""),
        regency_name=data.get("regency_name", ""),
        age_band=data["age_band"],
        sex=data["sex"],
        consultation_ref=consultation_ref,
        consultation_ref_index=consref_index,
        legal_basis=data["legal_basis"],
        identity_basis=share_basis,
        identity_basis_reason=legal_basis_reason if share_basis else "",
        note=data.get("note", ""),
        duplicate_of=duplicate_of,
        created_by=actor,
        created_at=now,
    )
    vault = None
    if not identity.is_empty or identity.subject_identifier:
        vault = CaseIdentity.objects.create(
            flag=flag,
            full_name=identity.full_name,
            phone=identity.phone,
            nik=identity.nik,
            address=identity.address,
            subject_identifier=identity.subject_identifier,
            nik_index=nik_index,
            created_at=now,
        )
    record(
        action="case_flag.create",
        actor=actor,
        operator=operator,
        target=flag,
        changes={
            "classification": {"old": None, "new": flag.classification},
            "definition": {"old": None, "new": definition.code},
            "duplicate_of": {"old": None, "new": duplicate_of.pk if duplicate_of else None},
            "identity_basis": {"old": None, "new": share_basis},
        },
        request=request,
    )
    shared = sorted(vault.shareable()) if (vault is not None and share_basis) else []
    _forward(
        flag=flag, event_type=FLAGGED, payload=flag_payload(flag), basis=share_basis, identity_fields=shared
    )
    logger.info("Suspected case flag %s recorded for operator %s", flag.pk, operator.pk)
    return flag


@transaction.atomic
def correct_flag(*, flag: CaseFlag, actor, data: dict, request=None) -> CaseFlag:
    """Change a flag's facts, reclassify it, and tell the recipients (identity is not resent)."""
    flag = CaseFlag.objects.select_for_update().select_related("operator", "definition").get(pk=flag.pk)
    if not flag.is_active:
        raise ValidationError(_("A withdrawn flag cannot be corrected."))
    evaluation = classify(definition=data["definition"], data=data, as_of=local_today(flag.operator))
    if not evaluation.meets_definition:
        raise ValidationError(
            _("With these facts the case no longer meets the definition; withdraw the flag instead.")
        )
    changes = {}
    for name in CORRECTABLE_FIELDS:
        new = data.get(name)
        if name in ("symptoms", "epidemiological"):
            new = sorted(new or [])
        elif name in ("regency_code", "regency_name"):
            new = new or ""
        elif name == "sari":
            new = bool(new)
        old = getattr(flag, name)
        if old != new:
            changes[name] = {
                "old": old.code if name == "definition" else str(old) if old is not None else None,
                "new": new.code if name == "definition" else str(new) if new is not None else None,
            }
            setattr(flag, name, new)
    if not changes:
        raise ValidationError(_("Nothing was changed."))
    if flag.classification != evaluation.classification:
        changes["classification"] = {"old": flag.classification, "new": evaluation.classification}
    if list(flag.classes) != evaluation.matched_classes:
        changes["classes"] = {"old": list(flag.classes), "new": evaluation.matched_classes}
    flag.classification = evaluation.classification
    flag.classes = evaluation.matched_classes
    flag.evaluation = {
        "classes": evaluation.matched_classes,
        "criteria": evaluation.matched_criteria,
        "facts": evaluation.matched_facts,
    }
    flag.revision += 1
    flag.save()
    record(
        action="case_flag.correct",
        actor=actor,
        operator=flag.operator,
        target=flag,
        changes=changes,
        request=request,
    )
    payload = flag_payload(flag, event_type=CORRECTED)
    payload["corrected_fields"] = sorted(k for k in changes if k not in ("classification", "classes"))
    _forward(flag=flag, event_type=CORRECTED, payload=payload)
    return flag


@transaction.atomic
def withdraw_flag(*, flag: CaseFlag, actor, reason: str, request=None) -> CaseFlag:
    """Withdraw a flag (a mistake, a duplicate) and tell the recipients; the row stays."""
    flag = CaseFlag.objects.select_for_update().select_related("operator", "definition").get(pk=flag.pk)
    if not flag.is_active:
        raise ValidationError(_("This flag was already withdrawn."))
    flag.status = FlagStatus.WITHDRAWN
    flag.withdrawn_at = timezone.now()
    flag.withdraw_reason = reason
    flag.save(update_fields=["status", "withdrawn_at", "withdraw_reason", "updated_at"])
    record(
        action="case_flag.withdraw",
        actor=actor,
        operator=flag.operator,
        target=flag,
        changes={"status": {"old": FlagStatus.ACTIVE, "new": FlagStatus.WITHDRAWN}, "reason": reason},
        request=request,
    )
    payload = _base_payload(flag, WITHDRAWN)
    payload["reason"] = reason
    _forward(flag=flag, event_type=WITHDRAWN, payload=payload)
    return flag


@transaction.atomic
def stop_sharing_identity(*, flag: CaseFlag, actor, request=None) -> CaseFlag:
    """Withdraw the basis for sharing the flag's identity; no message leaves with it from now on.

    Queued alerts hold no identity (it is added when a message leaves, only while the
    basis holds), so clearing the basis also covers every retry still to come.
    """
    flag = CaseFlag.objects.select_for_update().select_related("operator").get(pk=flag.pk)
    if not flag.identity_basis:
        raise ValidationError(_("The identity of this flag is not being shared."))
    old = flag.identity_basis
    flag.identity_basis = IdentityBasis.NONE
    flag.identity_basis_reason = ""
    flag.save(update_fields=["identity_basis", "identity_basis_reason", "updated_at"])
    record(
        action="case_flag.stop_sharing_identity",
        actor=actor,
        operator=flag.operator,
        target=flag,
        changes={"identity_basis": {"old": old, "new": ""}},
        request=request,
    )
    return flag


# --- Send-time disclosure (registered with portal.alerts.disclosure) -----------------


def identity_basis_now(flag: CaseFlag, identity: CaseIdentity | None) -> str:
    """Return the basis on which the flag's identity may leave at this moment, or "".

    The flag must be active and its basis not withdrawn; then the data subject's
    current consent in the ledger, or else the explicit legal basis the operator
    recorded (with its reason) for this flag. Consent is read now, not remembered.
    """
    if not flag.is_active or not flag.identity_basis or identity is None:
        return ""
    if identity.purged_at is not None or identity.is_empty:
        return ""
    if _has_consent(operator=flag.operator, subject_identifier=identity.subject_identifier):
        return IdentityBasis.CONSENT
    if flag.identity_basis_reason:
        return IdentityBasis.LEGAL_BASIS
    return ""


def _flag_of(data: dict) -> CaseFlag | None:
    """Return the flag a suspected-case document is about, or None (then nothing personal goes)."""
    try:
        return CaseFlag.objects.select_related("operator").filter(uid=data.get("flag_id")).first()
    except (ValidationError, ValueError):  # not a flag id
        return None


def prepare_send(delivery, data: dict) -> Prepared:
    """Decide what this delivery of a suspected-case alert may carry now, and how to record it.

    The identity goes only with a flagged alert and only while its basis holds (see
    `identity_basis_now`). Whatever identity a stored document holds is dropped first
    (alerts queued before the check moved to send time held one).
    """
    data = {key: value for key, value in data.items() if key != "identity"}
    flag = _flag_of(data)
    if flag is None:
        return Prepared(data)
    basis = ""
    if str(data.get("schema", "")).startswith(f"{FLAGGED}/"):
        identity = CaseIdentity.objects.filter(flag=flag).first()
        basis = identity_basis_now(flag, identity)
        shared = identity.shareable() if basis else {}
        if shared:
            data["identity"] = shared
        else:
            basis = ""

    def record_sent(body: bytes) -> None:
        _record_sent(flag=flag, delivery=delivery, data=data, basis=basis, body=body)

    return Prepared(data, record_sent)


def _record_sent(*, flag: CaseFlag, delivery, data: dict, basis: str, body: bytes) -> None:
    """Record what this attempt of `delivery` carries, to whom, on which basis."""
    from portal.alerts.models import Authority

    authority = Authority.objects.filter(pk=delivery.authority_id).values_list("code", "name").first()
    code, name = authority or ("", "")
    Disclosure.objects.create(
        flag=flag,
        event_type=str(data.get("schema", "")).rsplit("/", 1)[0],
        stage=DisclosureStage.SENT,
        alert_id=delivery.alert_id,
        delivery_id=delivery.pk,
        attempt=delivery.attempt_count,
        channel_kind=delivery.kind,
        authority_code=code,
        recipient=name,
        fields=payload_fields(data),
        identity_included="identity" in data,
        basis=basis,
        body_sha256=hashlib.sha256(body).hexdigest(),
    )


# --- Identity vault ---------------------------------------------------------------


def audit_flag_view(*, flag: CaseFlag, actor, request=None) -> None:
    """Audit that a member saw the flag's decrypted fields (consultation reference, note, reason)."""
    shown = [name for name in ("consultation_ref", "note", "identity_basis_reason") if getattr(flag, name)]
    if shown:
        record(
            action="case_flag.view",
            actor=actor,
            operator=flag.operator,
            target=flag,
            changes={"decrypted": shown},
            request=request,
        )


def reveal_identity(*, identity: CaseIdentity, actor, request=None) -> CaseIdentity:
    """Audit that `actor` is about to see the decrypted identity; return it."""
    record(
        action="case_identity.view",
        actor=actor,
        operator=identity.flag.operator,
        target=identity.flag,
        changes={"identity": identity.pk},
        request=request,
    )
    return identity


def purge_expired_identities(*, now: datetime | None = None) -> int:
    """Blank identities older than IDENTITY_RETENTION_DAYS (the flag stays); return how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.IDENTITY_RETENTION_DAYS)
    purged = 0
    ids = list(CaseIdentity.objects.unpurged().filter(created_at__lt=cutoff).values_list("pk", flat=True))
    for pk in ids:
        with transaction.atomic():
            identity = (
                CaseIdentity.objects.select_for_update()
                .select_related("flag__operator")
                .filter(pk=pk)
                .first()
            )
            if identity is None or identity.purged_at is not None:
                continue  # another run purged it meanwhile
            identity.full_name = identity.phone = identity.nik = identity.address = ""
            identity.subject_identifier = ""
            identity.nik_index = ""
            identity.purged_at = now
            identity.save()
            record(
                action="case_identity.purge",
                operator=identity.flag.operator,
                target=identity.flag,
                changes={
                    "purged_at": {"old": None, "new": now.isoformat()},
                    "retention_days": settings.IDENTITY_RETENTION_DAYS,
                },
            )
            purged += 1
    if purged:
        logger.info("Purged %d expired suspected-case identities", purged)
    return purged


def classification_label(code: str) -> str:
    return str(Classification(code).label) if code in Classification.values else code
