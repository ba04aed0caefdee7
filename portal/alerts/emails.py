"""E-mails written for people: alert e-mails to authorities and notices to operators and BSSN.

Every e-mail carries both languages (the recipient's first), a text and an HTML part,
and times in the recipient's zone with UTC beside it. Transports send what this
module renders; notices queue it. Nothing here touches the network.
"""

import json
from datetime import datetime

from django.apps import apps
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string, select_template
from django.urls import reverse
from django.utils import translation

from portal.timefmt import zone_for_province

from .models import Alert, Delivery, EventType

EMAIL_LANGUAGES = ("id", "en")


def email_languages(language: str | None) -> list[str]:
    """Return the languages of an e-mail: the recipient's first (Indonesian when unknown), the other below."""
    first = language if language in EMAIL_LANGUAGES else settings.LANGUAGE_CODE
    return [first, *(other for other in EMAIL_LANGUAGES if other != first)]


def render_bilingual(*, templates: list[str], context: dict, language: str | None) -> tuple[str, str, str]:
    """Return (subject, text, HTML) of an e-mail in both languages, the recipient's first.

    `templates` are base names tried in order (`<name>_subject.txt`, `<name>.txt`,
    `<name>.html`); the HTML templates are fragments placed in templates/emails/layout.html.
    The subject is in the first language only.
    """
    subject, parts = "", []
    for lang in email_languages(language):
        with translation.override(lang):
            ctx = {**context, "LANGUAGE_CODE": lang}
            if not parts:
                subject = " ".join(
                    select_template([f"{n}_subject.txt" for n in templates]).render(ctx).split()
                )
            parts.append(
                {
                    "lang": lang,
                    "name": translation.get_language_info(lang)["name_local"],
                    "text": select_template([f"{n}.txt" for n in templates]).render(ctx).strip(),
                    "html": select_template([f"{n}.html" for n in templates]).render(ctx),
                }
            )
    text = "".join(
        (f"\n\n----- {part['name']} -----\n\n" if index else "") + part["text"]
        for index, part in enumerate(parts)
    )
    html = render_to_string("emails/layout.html", {"parts": parts, "first": parts[0]["lang"]})
    return subject, text + "\n", html


def _when(value: str | None) -> datetime | None:
    """Return a payload time (ISO 8601) as a datetime, or None."""
    try:
        return datetime.fromisoformat(value) if value else None
    except (TypeError, ValueError):
        return None


def _label(model: str, field: str, value):
    """Return the (lazy, translated) choice label of a payload code, or the code when unknown.

    The model is looked up by label so the alerts core imports no domain app.
    """
    if value in (None, ""):
        return None
    try:
        choices = dict(apps.get_model(model)._meta.get_field(field).flatchoices)
    except (LookupError, FieldDoesNotExist):
        return value
    return choices.get(value, value)


def _site_url(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def _incident_summary(alert: Alert, payload: dict) -> dict:
    incident = payload.get("incident") or {}
    operator = incident.get("operator") or {}
    deadline = payload.get("deadline")
    report = payload.get("report") or {}
    return {
        "reference": incident.get("reference", ""),
        "link": incident.get("url", ""),
        "operator_name": operator.get("name", ""),
        "sector": _label("accounts.Operator", "sector", operator.get("sector")),
        "province": _label("accounts.Operator", "province", operator.get("province")),
        "is_iiv": operator.get("is_iiv", False),
        "category": _label("incidents.Incident", "category", incident.get("category")),
        "severity": _label("incidents.Incident", "severity", incident.get("severity")),
        "bssn_severity": _label("incidents.Incident", "bssn_severity", incident.get("bssn_severity")),
        "tlp": _label("incidents.Incident", "tlp", incident.get("tlp")),
        "status": _label("incidents.Incident", "status", incident.get("status")),
        "from_status": _label("incidents.Incident", "status", payload.get("from_status")),
        "to_status": _label("incidents.Incident", "status", payload.get("to_status")),
        "personal_data": (incident.get("personal_data") or {}).get("involved"),
        "data_subjects": (incident.get("personal_data") or {}).get("data_subjects"),
        "aware_at": _when(incident.get("aware_at")),
        "submitted_at": _when(incident.get("submitted_at")),
        "changed_at": _when(payload.get("changed_at")),
        "requested_at": _when(payload.get("requested_at")),
        "report_kind": _label("incidents.IncidentReport", "kind", report.get("kind")),
        "report_number": report.get("number"),
        "report_submitted_at": _when(report.get("submitted_at")),
        "deadlines": _deadlines(alert, deadline),
    }


def _deadlines(alert: Alert, missed: dict | None) -> list[dict]:
    """Return the deadlines to show: the missed one of the payload, then the incident's open ones.

    Deadlines are the regulations' dates for the incident, not data about people; they
    are read when the e-mail is written, so a retried e-mail shows the current ones.
    """
    rows = []
    if missed:
        rows.append(
            {
                "name": translation.gettext_lazy(missed.get("name", "")),
                "due_at": _when(missed.get("due_at")),
                "source": translation.gettext_lazy(missed.get("source", "")),
            }
        )
    if alert.subject_id and alert.subject_type_id:
        subject = alert.subject_type.model_class()
        if subject is not None and subject._meta.label == "incidents.Incident":
            obligations = (
                apps.get_model("incidents", "Obligation")
                .objects.filter(incident_id=alert.subject_id, met_at__isnull=True, waived_at__isnull=True)
                .select_related("rule")
                .order_by("due_at")
            )
            for obligation in obligations:
                if missed and obligation.rule.name == missed.get("name"):
                    continue
                rows.append(
                    {
                        "name": translation.gettext_lazy(obligation.rule.name),
                        "due_at": obligation.due_at,
                        # Lazy, like the name: each language part of the e-mail reads it in its own language.
                        "source": obligation.rule.legal_source_lazy,
                    }
                )
    return rows


def _case_summary(alert: Alert, payload: dict) -> dict:
    operator = payload.get("operator") or {}
    regency = payload.get("regency") or {}
    corrected = [_field_name("cases.CaseFlag", name) for name in payload.get("corrected_fields") or []]
    link = ""
    if alert.subject_id:
        link = _site_url(reverse("admin:cases_caseflag_change", args=[alert.subject_id]))
    return {
        "reference": payload.get("recontact_reference") or str(payload.get("flag_id", ""))[:8],
        "link": link,
        "operator_name": operator.get("name", ""),
        "classification": _label("cases.CaseFlag", "classification", payload.get("classification")),
        "case_definition": payload.get("case_definition", ""),
        "province": _label("cases.CaseFlag", "province", payload.get("province")),
        "regency": regency.get("name") or regency.get("code") or "",
        "age_band": _label("cases.CaseFlag", "age_band", payload.get("age_band")),
        "sex": _label("cases.CaseFlag", "sex", payload.get("sex")),
        "revision": payload.get("revision"),
        "reason": _label("cases.CaseFlag", "withdraw_reason", payload.get("reason")),
        "corrected": corrected,
        "identity_included": "identity" in payload,
    }


def _field_name(model: str, name: str):
    try:
        return apps.get_model(model)._meta.get_field(name).verbose_name
    except (LookupError, FieldDoesNotExist):
        return name


def alert_email_context(alert: Alert, *, authority=None) -> dict:
    """Return what an alert e-mail shows: a summary built from the alert's payload, nothing re-read.

    Times are shown in the recipient authority's zone (its province's, WIB for national
    bodies) with UTC beside them.
    """
    payload = alert.payload or {}
    family = alert.event_type.split(".", 1)[0]
    if family == "incident":
        summary = _incident_summary(alert, payload)
    elif family == "suspected_case":
        summary = _case_summary(alert, payload)
    else:
        summary = {"reference": "", "link": "", "operator_name": ""}
    if not summary["operator_name"] and alert.operator is not None:
        summary["operator_name"] = alert.operator.name
    event_label = (
        EventType(alert.event_type).label if alert.event_type in EventType.values else alert.event_type
    )
    return {
        "alert": alert,
        "authority": authority,
        "event_label": event_label,
        "payload": payload,
        "summary": summary,
        "zone": zone_for_province(getattr(authority, "province", "")),
        "created_at": alert.created_at,
    }


def render_email(delivery: Delivery) -> EmailMultiAlternatives:
    """Build the alert e-mail for people: subject, summary and link in both languages, and the JSON envelope.

    The authority's language comes first. The attachment alert.json carries the
    machine-readable envelope for systems that import it.
    """
    alert = delivery.alert
    context = alert_email_context(alert, authority=delivery.authority)
    context["envelope_json"] = json.dumps(alert.envelope(), ensure_ascii=False, indent=2, sort_keys=True)
    names = [f"alerts/email/{alert.event_type.replace('.', '/')}", "alerts/email/alert"]
    subject, text, html = render_bilingual(
        templates=names, context=context, language=delivery.authority.language
    )
    message = EmailMultiAlternatives(
        subject=subject, body=text, to=[delivery.address], headers={"X-Portal-Alert-Id": alert.webhook_id}
    )
    message.attach_alternative(html, "text/html")
    message.attach("alert.json", alert.body, "application/json")
    return message


def plain_email(
    *, to: list[str], template: str, context: dict, language: str | None
) -> EmailMultiAlternatives:
    """Render a notice to people in both languages, `language` first (templates `<template>_subject.txt` …).

    `language` None means the recipients' language is unknown: Indonesian first, English below.
    """
    subject, text, html = render_bilingual(templates=[template], context=context, language=language)
    message = EmailMultiAlternatives(subject=subject, body=text, to=to)
    message.attach_alternative(html, "text/html")
    return message
