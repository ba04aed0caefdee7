"""Evidence files: checked uploads in private storage, audited downloads, retention."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.accounts.models import User
from portal.audit.services import record

from ..evidence import check_upload
from ..models import CLOSING_STATUSES, Evidence, Incident
from ..permissions import TRIAGE, require_perm, require_writer
from .base import TransitionRefused

logger = logging.getLogger(__name__)


def add_evidence(
    *, incident: Incident, actor: User, upload, description: str = "", by_bssn: bool = False, request=None
) -> Evidence:
    """Check an upload (size, type by content), record its sha256 and store it in private storage."""
    if by_bssn:
        require_perm(actor, TRIAGE)
    else:
        require_writer(actor, incident.operator)
    if incident.is_closed:
        raise TransitionRefused(_("This incident is closed; no more evidence can be added."))
    checked = check_upload(upload)
    with transaction.atomic():
        evidence = Evidence(
            incident=incident,
            original_name=checked.name,
            content_type=checked.content_type,
            size=checked.size,
            sha256=checked.sha256,
            description=description[:300],
            uploaded_by=actor,
            by_bssn=by_bssn,
        )
        evidence.file.save(checked.name, upload, save=False)
        try:
            evidence.save()
            record(
                action="incident.evidence_upload",
                actor=actor,
                operator=incident.operator,
                target=evidence,
                changes={"incident": incident.reference, "sha256": checked.sha256, "size": checked.size},
                request=request,
            )
        except Exception:
            evidence.file.delete(save=False)
            raise
    return evidence


def record_evidence_download(*, evidence: Evidence, actor: User, request=None) -> None:
    """Audit a download of an evidence file."""
    record(
        action="incident.evidence_download",
        actor=actor,
        operator=evidence.incident.operator,
        target=evidence,
        changes={"incident": evidence.incident.reference, "sha256": evidence.sha256},
        request=request,
    )


def purge_expired_evidence(*, now: datetime | None = None) -> int:
    """Delete evidence files of incidents closed longer than EVIDENCE_RETENTION_DAYS.

    The file leaves storage; the row (name, size, sha256) stays, marked purged. Each
    purge is audited. Idempotent: purged rows are skipped, so a doubled run is harmless.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.EVIDENCE_RETENTION_DAYS)
    expired = Evidence.objects.select_related("incident__operator").filter(
        purged_at__isnull=True, incident__status__in=CLOSING_STATUSES, incident__closed_at__lte=cutoff
    )
    purged = 0
    for evidence in expired.iterator(chunk_size=200):
        with transaction.atomic():
            claimed = Evidence.objects.filter(pk=evidence.pk, purged_at__isnull=True).update(purged_at=now)
            if not claimed:
                continue
            record(
                action="evidence.purge",
                operator=evidence.incident.operator,
                target=evidence,
                changes={"sha256": evidence.sha256, "retention_days": settings.EVIDENCE_RETENTION_DAYS},
            )
        # The file goes after the row is marked: a crash here leaves an orphan file, never
        # a row that points at nothing.
        evidence.file.delete(save=False)
        purged += 1
    if purged:
        logger.info("purged %d evidence files past retention", purged)
    return purged
