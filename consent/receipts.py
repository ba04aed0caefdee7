"""Consent receipts: ISO/IEC TS 27560 / Kantara v1.1 fields, with a proof anyone can check offline.

A receipt carries, besides the human-readable record, the event exactly as the ledger
hashed it (`ledger.canonical`, `ledger.prev_hash`), the event's position, its RFC 9162
inclusion proof and the signed checkpoint whose root the proof reaches. With the
public keys (/.well-known/portal-checkpoint-keys.json), `receipt_problems` (used by
`manage.py verify_receipt` and the public page) or the short verifier in
docs/consent.md checks it without the portal's database. The schema is
docs/schemas/consent.receipt.schema.json.
"""

import hashlib
from contextlib import suppress
from datetime import datetime

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from portal.audit.checkpoints import CheckpointRefused, latest_checkpoint
from portal.transparency import (
    SignedCheckpoint,
    default_store,
    inclusion_proof,
    leaf_hash,
    verify_inclusion,
)

from .ledger import checkpoint_ledger, stream_name
from .models import (
    SHARE_IDENTITY_WITH_HEALTH_AUTHORITIES,
    ConsentEvent,
    LegalBasis,
    Purpose,
    SpecificData,
    epoch_micros,
)

RECEIPT_SCHEMA = "ISO/IEC TS 27560:2023"
KANTARA_VERSION = "KI-CR-v1.1.0"
# Positions in the canonical text (consent.models.CANONICAL_FIELDS).
_OPERATOR, _SEQ, _RECORD, _PURPOSE, _STATE, _EVENT_AT = 0, 1, 2, 4, 6, 10

# Kantara v1.1 purpose categories, derived from the lawful basis (a purpose declares
# no category of its own; its basis says what kind of processing it is).
_CATEGORY_BY_BASIS = {
    LegalBasis.CONTRACT: "Contracted Service",
    LegalBasis.LEGAL_OBLIGATION: "Legally Required Data Retention",
    LegalBasis.VITAL_INTEREST: "Protecting Your Health",
    LegalBasis.PUBLIC_TASK: "Required by Law Enforcement or Government",
    LegalBasis.LEGITIMATE_INTEREST: "Protecting Our Interests",
}


def _purpose_category(purpose: Purpose) -> str:
    if purpose.legal_basis in _CATEGORY_BY_BASIS:
        return _CATEGORY_BY_BASIS[purpose.legal_basis]
    if purpose.code == SHARE_IDENTITY_WITH_HEALTH_AUTHORITIES:
        return "Protecting Your Health"
    if "marketing" in purpose.code:
        return "Marketing Third Parties" if purpose.recipients.strip() else "Marketing"
    return "Core Function"


def _kantara_purpose(event: ConsentEvent, purpose: Purpose | None) -> dict:
    if purpose is None:
        return {
            "purpose": event.purpose_code,
            "purposeCategory": ["Core Function"],
            "consentType": "EXPLICIT",
            "piiCategory": [],
            "primaryPurpose": False,
            "termination": "",
            "thirdPartyDisclosure": False,
        }
    doc = {
        "purpose": purpose.description,
        "purposeCategory": [_purpose_category(purpose)],
        # UU PDP Pasal 22: consent is explicit (written or recorded), never implied.
        "consentType": "EXPLICIT",
        "piiCategory": purpose.data_category_list(),
        # Part of the core service: processing the contract or the law requires.
        "primaryPurpose": purpose.legal_basis in (LegalBasis.CONTRACT, LegalBasis.LEGAL_OBLIGATION),
        "termination": purpose.retention,
        "thirdPartyDisclosure": bool(purpose.recipients.strip()),
    }
    if doc["thirdPartyDisclosure"]:
        doc["thirdPartyName"] = purpose.recipients.strip()
    return doc


def receipt(event: ConsentEvent, *, with_proof: bool = True) -> dict:
    """Return a consent receipt for one event (ISO/IEC TS 27560:2023 and Kantara v1.1 names).

    With `with_proof`, the receipt carries the ledger proof; an event newer than the
    latest checkpoint gets a checkpoint first (one per download at most, and only when
    the ledger grew).
    """
    version = event.policy_version
    operator = event.operator
    purpose = version.purposes.filter(code=event.purpose_code).first()
    site = settings.SITE_URL.rstrip("/")
    policy_url = site + version.get_public_url()
    specific = list(purpose.specific_data or []) if purpose else []
    # English names, as Kantara's examples have them, whatever the page's language.
    with translation.override("en"):
        spi_categories = [str(dict(SpecificData.choices).get(code, code)) for code in specific]
    doc = {
        "schema_version": RECEIPT_SCHEMA,
        "version": KANTARA_VERSION,
        "record_id": str(event.record_id),
        "consentReceiptID": str(event.record_id),
        "receipt_issued": timezone.now().isoformat(),
        "consentTimestamp": int(event.event_at.timestamp()),
        "pii_principal_id": event.subject_identifier,
        "piiPrincipalId": event.subject_identifier,
        "pii_controller": {"name": operator.name, "id": operator.slug, "contact": operator.contact_email},
        "piiControllers": [
            {
                "piiController": operator.name,
                "contact": operator.contact_email,
                "address": operator.address or operator.get_province_display(),
                "email": operator.contact_email,
                "phone": operator.contact_phone or "",
                "piiControllerUrl": site + operator_public_policy_url(operator),
            }
        ],
        "jurisdiction": "ID",
        "language": version.languages()[0] if version.languages() else "id",
        "policyUrl": policy_url,
        "notice": {
            "policy_reference": policy_url,
            "policy_version": version.number,
            "policy_hash": {"algorithm": "sha256", "value": version.sha256},
            "language": version.languages(),
        },
        "purposes": [
            {
                "purpose_id": event.purpose_code,
                "purpose": purpose.description if purpose else "",
                "lawful_basis": purpose.legal_basis if purpose else "",
                "pii_categories": purpose.data_category_list() if purpose else [],
                "specific_pii": specific,
                "retention": purpose.retention if purpose else "",
                "recipients": purpose.recipients if purpose else "",
                "withdrawal_method": purpose.withdrawal_method if purpose else "",
            }
        ],
        "services": [{"service": version.title, "purposes": [_kantara_purpose(event, purpose)]}],
        "sensitive": bool(specific),
        "spiCat": spi_categories,
        "collection_method": event.method,
        "collectionMethod": event.get_method_display(),
        "consent_actor": event.actor_type,
        "state": event.state,
        "event": [
            {
                "event_time": event.event_at.isoformat(),
                "event_type": event.state,
                "event_state": event.effective_state(),
                "recorded_time": event.recorded_at.isoformat(),
            }
        ],
        "expiry": event.expires_at.isoformat() if event.expires_at else None,
        "stop_processing_by": event.stop_processing_by.isoformat() if event.stop_processing_by else None,
        "evidence": event.evidence,
        "integrity": {"ledger_sequence": event.seq, "prev_hash": event.prev_hash, "hash": event.hash},
    }
    if with_proof:
        doc["ledger"] = ledger_proof(event)
    return doc


def operator_public_policy_url(operator) -> str:
    from django.urls import reverse

    return reverse("public_policy:current", kwargs={"operator_slug": operator.slug})


def ledger_proof(event: ConsentEvent) -> dict:
    """Return the event as hashed, its inclusion proof and the signed checkpoint it reaches.

    The proof is computed from the checkpoint store's witnessed leaves when they are
    complete (else from the database): linear in the ledger's size, a few seconds
    for a million events.
    """
    stream = stream_name(event.operator_id)
    checkpoint = latest_checkpoint(stream)
    if checkpoint is None or checkpoint.size < event.seq:
        # Refused: the receipt goes out without a proof; verify_ledger names the reason.
        with suppress(CheckpointRefused, OSError):
            checkpoint_ledger(operator_id=event.operator_id)
        checkpoint = latest_checkpoint(stream)
    doc = {
        "stream": stream,
        "leaf_index": event.seq - 1,
        "canonical": event.canonical().decode(),
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }
    if checkpoint is None or checkpoint.size < event.seq:
        return {**doc, "inclusion_proof": [], "checkpoint": None}
    store = default_store()
    if store.leaf_count(stream) >= checkpoint.size:
        leaves = store.read_leaves(stream, checkpoint.size)
    else:
        leaves = (
            bytes.fromhex(h)
            for h in ConsentEvent.objects.filter(operator_id=event.operator_id, seq__lte=checkpoint.size)
            .order_by("seq")
            .values_list("hash", flat=True)
            .iterator(chunk_size=20000)
        )
    hashes = [leaf_hash(leaf) for leaf in leaves]
    return {
        **doc,
        "inclusion_proof": [h.hex() for h in inclusion_proof(hashes, event.seq - 1)],
        "checkpoint": checkpoint.to_json(),
    }


def receipt_problems(doc, keys: dict) -> list[str]:
    """Return why a receipt does not verify (empty: it does). Needs no database.

    `keys` maps key id to Ed25519 public key. Checks that the event's content gives
    its hash, that the receipt's record id, purpose, state and event time are the
    hashed ones, that the inclusion proof reaches the checkpoint's root, and that a
    known key signed the checkpoint.
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("ledger"), dict):
        return [_("Not a consent receipt with a ledger proof.")]
    ledger = doc["ledger"]
    try:
        canonical = str(ledger["canonical"])
        prev_hash, event_hash = str(ledger["prev_hash"]), str(ledger["hash"])
        index = int(ledger["leaf_index"])
        proof = [bytes.fromhex(h) for h in ledger["inclusion_proof"]]
        checkpoint = SignedCheckpoint.from_json(ledger["checkpoint"]) if ledger.get("checkpoint") else None
    except (KeyError, TypeError, ValueError):
        return [_("The ledger proof is malformed.")]
    problems = []
    if hashlib.sha256((prev_hash + canonical).encode()).hexdigest() != event_hash:
        problems.append(_("The event's content does not give its hash."))
    fields = canonical.split("\x1f")
    if len(fields) != 16:
        return [*problems, _("The hashed event is malformed.")]
    expected = {
        _RECORD: str(doc.get("record_id", "")),
        _PURPOSE: _first_purpose(doc),
        _STATE: str(doc.get("state", "")),
        _SEQ: str(index + 1),
        _EVENT_AT: _micros(doc),
    }
    names = {
        _RECORD: "record id",
        _PURPOSE: "purpose",
        _STATE: "state",
        _SEQ: "position",
        _EVENT_AT: "event time",
    }
    for position, value in expected.items():
        if fields[position] != value:
            problems.append(
                _("The receipt's %(field)s is not the one in the ledger.") % {"field": names[position]}
            )
    if checkpoint is None:
        return [*problems, _("The receipt carries no signed checkpoint.")]
    if checkpoint.stream != f"consent/{fields[_OPERATOR]}" or ledger.get("stream") != checkpoint.stream:
        problems.append(_("The checkpoint is of another ledger."))
    try:
        root = bytes.fromhex(checkpoint.root_hash)
        included = verify_inclusion(
            leaf=bytes.fromhex(event_hash), index=index, size=checkpoint.size, proof=proof, root=root
        )
    except ValueError:
        included = False
    if not included:
        problems.append(_("The inclusion proof does not reach the checkpoint's root."))
    if not checkpoint.signature_valid(keys):
        problems.append(_("The checkpoint's signature is not from a published key."))
    return problems


def _first_purpose(doc: dict) -> str:
    try:
        return str(doc["purposes"][0]["purpose_id"])
    except (KeyError, IndexError, TypeError):
        return ""


def _micros(doc: dict) -> str:
    try:
        return str(epoch_micros(datetime.fromisoformat(doc["event"][0]["event_time"])))
    except (KeyError, IndexError, TypeError, ValueError):
        return ""
