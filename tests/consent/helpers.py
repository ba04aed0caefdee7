"""Builders shared by the consent tests."""

from datetime import date

from consent import services
from consent.models import (
    SHARE_IDENTITY_WITH_HEALTH_AUTHORITIES,
    CollectionMethod,
    LegalBasis,
    PolicyVersion,
    Purpose,
)

PURPOSES = ("marketing-email", SHARE_IDENTITY_WITH_HEALTH_AUTHORITIES)


def draft_version(operator, actor=None, *, codes=PURPOSES, title="Kebijakan Privasi") -> PolicyVersion:
    version = services.create_policy_version(
        operator=operator,
        actor=actor,
        data={
            "title": title,
            "text_id": "# Kebijakan\n\nKami melindungi data Anda.",
            "text_en": "# Policy\n\nWe protect your data.",
            "effective_date": date(2026, 1, 1),
            "change_summary": "First version.",
        },
    )
    existing = version.purpose_codes()
    for code in codes:
        if code not in existing:
            Purpose.objects.create(
                version=version,
                code=code,
                description=f"Purpose {code}",
                legal_basis=LegalBasis.CONSENT,
                data_categories="name, e-mail address",
                specific_data=["health"] if "health" in code else [],
                retention="2 years",
                recipients="Ministry of Health",
                withdrawal_method="Settings page",
            )
    return version


def published_version(operator, actor=None, **kwargs) -> PolicyVersion:
    return services.publish_version(version=draft_version(operator, actor, **kwargs), actor=actor)


def give(operator, subject, code=PURPOSES[0], *, state="given", version=None, actor=None, **kwargs):
    version = version or services.current_policy(operator) or published_version(operator, actor)
    return services.record_consent(
        operator=operator,
        actor=actor,
        subject_identifier=subject,
        purpose_codes=[code],
        state=state,
        policy_version=version,
        method=CollectionMethod.WEB_FORM,
        **kwargs,
    )[0]


def web_upload(client, operator, data: bytes, name: str = "consents.csv"):
    """Upload a file through the import page as a person would; return (latest import, final page).

    The worker's check runs in-process when the upload's transaction commits.
    """
    import io

    from django.test import TestCase
    from django.urls import reverse

    from consent.models import ConsentImport

    upload = io.BytesIO(data)
    upload.name = name
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(reverse("consent:import", args=[operator.slug]), {"file": upload})
    if response.status_code == 302:
        response = client.get(response["Location"])
    latest = ConsentImport.objects.filter(operator=operator).order_by("-created_at").first()
    return latest, response


def web_confirm(client, operator, consent_import):
    """Confirm an import through its page; return it, reloaded, and the page shown afterwards."""
    from django.test import TestCase
    from django.urls import reverse

    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(reverse("consent:import_confirm", args=[operator.slug, consent_import.pk]))
    page = client.get(response["Location"])
    consent_import.refresh_from_db()
    return consent_import, page
