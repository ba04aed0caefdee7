"""How a delivery leaves the building: signed webhooks and e-mail.

Each transport's `send` returns a SendResult or raises TransportError; `permanent`
says whether a retry could ever help. Nothing here touches the database.
"""

import json
import logging
import smtplib
import threading
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit, urlunsplit

import requests
from django.apps import apps
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string, select_template
from django.urls import reverse
from django.utils import timezone, translation
from requests.adapters import HTTPAdapter

from portal.timefmt import zone_for_province

from . import signing
from .models import Alert, Channel, ChannelKind, Delivery, EventType
from .ssrf import UnsafeURL, resolve

logger = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 429})
MAX_RESPONSE_BYTES = 64 * 1024


@dataclass
class SendResult:
    status_code: int | None = None
    webhook_timestamp: int | None = None


class TransportError(Exception):
    """A send failed; `permanent` failures are not retried, `disable` turns the channel off."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        status_code: int | None = None,
        retry_after: float | None = None,
        disable: bool = False,
        webhook_timestamp: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent or disable
        self.status_code = status_code
        self.retry_after = retry_after
        self.disable = disable
        self.webhook_timestamp = webhook_timestamp


def parse_retry_after(value: str | None) -> float | None:
    """Return the seconds a `Retry-After` header asks for (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - timezone.now()).total_seconds())


class _PinnedAdapter(HTTPAdapter):
    """Connect to the address the SSRF guard checked, while TLS still verifies the host name."""

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        hostname = getattr(request, "pinned_hostname", None)
        if hostname and host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = hostname
            pool_kwargs["assert_hostname"] = hostname
        return host_params, pool_kwargs


_local = threading.local()


def _session() -> requests.Session:
    # One keep-alive session per worker thread; created lazily so forked workers get their own.
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        session.trust_env = False  # no proxies from the environment: we connect to the checked address
        adapter = _PinnedAdapter(pool_connections=32, pool_maxsize=8, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        _local.session = session
    return session


def _pinned_url(url: str, address: str) -> tuple[str, str]:
    """Return (url with the host replaced by `address`, Host header value)."""
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port else host
    host_header = parts.hostname + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), host_header


class WebhookTransport:
    """POST the alert's envelope, signed per Standard Webhooks v1, to the endpoint.

    One instance serves one send, or one short batch to the same channel: it resolves
    and checks each address once, and connects every send of it to that checked address.
    """

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self._resolved: dict[str, tuple] = {}

    def _resolve(self, url: str) -> tuple:
        if url not in self._resolved:
            with translation.override("en"):  # attempt errors are a technical log, kept in English
                self._resolved[url] = resolve(url)
        return self._resolved[url]

    def send(self, delivery: Delivery) -> SendResult:
        body = delivery.alert.body.encode()
        try:
            hostname, _port, addresses = self._resolve(delivery.address)
        except UnsafeURL as exc:
            raise TransportError(f"refused: {exc}", permanent=True) from None
        signing_secrets = self.channel.signing_secrets()
        if not signing_secrets:
            raise TransportError("the endpoint has no signing secret", permanent=True)
        headers = signing.webhook_headers(signing_secrets, delivery.alert.webhook_id, body)
        timestamp = int(headers["webhook-timestamp"])
        url, headers["host"] = _pinned_url(delivery.address, addresses[0])
        headers["user-agent"] = "portal-insiden-webhooks/1"
        session = _session()
        prepared = session.prepare_request(requests.Request("POST", url, headers=headers, data=body))
        prepared.pinned_hostname = hostname
        try:
            response = session.send(
                prepared,
                timeout=(settings.ALERTS_CONNECT_TIMEOUT, settings.ALERTS_READ_TIMEOUT),
                allow_redirects=False,
                stream=True,
            )
        except requests.Timeout:
            raise TransportError("timed out", webhook_timestamp=timestamp) from None
        except requests.RequestException as exc:
            raise TransportError(
                f"connection failed: {type(exc).__name__}", webhook_timestamp=timestamp
            ) from None
        try:
            self._drain(response)
        except requests.RequestException:
            raise TransportError("reading the response failed", webhook_timestamp=timestamp) from None
        code = response.status_code
        if 200 <= code < 300:
            return SendResult(status_code=code, webhook_timestamp=timestamp)
        if code == 410:
            raise TransportError(
                "gone: endpoint disabled", status_code=code, disable=True, webhook_timestamp=timestamp
            )
        if code >= 500 or code in RETRYABLE_STATUS:
            raise TransportError(
                f"HTTP {code}",
                status_code=code,
                webhook_timestamp=timestamp,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )
        if 300 <= code < 400:
            raise TransportError(
                f"HTTP {code}: redirects are not followed",
                status_code=code,
                permanent=True,
                webhook_timestamp=timestamp,
            )
        raise TransportError(f"HTTP {code}", status_code=code, permanent=True, webhook_timestamp=timestamp)

    @staticmethod
    def _drain(response: requests.Response) -> None:
        # Read a bounded amount so the keep-alive connection returns to the pool; a
        # receiver sending more than that only gets its connection closed.
        read = 0
        for chunk in response.iter_content(8192):
            read += len(chunk)
            if read > MAX_RESPONSE_BYTES:
                break
        response.close()


def _flatten(data, prefix: str = "") -> list[tuple[str, str]]:
    """Return (dotted key, text) pairs of a JSON document (the operator's list of disclosed fields)."""
    rows: list[tuple[str, str]] = []
    if isinstance(data, dict):
        for key in sorted(data):
            rows.extend(_flatten(data[key], f"{prefix}{key}."))
    elif isinstance(data, list) and data and any(isinstance(v, dict | list) for v in data):
        for index, value in enumerate(data):
            rows.extend(_flatten(value, f"{prefix}{index}."))
    else:
        text = (
            ", ".join(str(v) for v in data) if isinstance(data, list) else ("" if data is None else str(data))
        )
        rows.append((prefix.rstrip("."), text))
    return rows


# --- E-mails written for people ------------------------------------------------------

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


class EmailTransport:
    """Send the alert e-mail through the configured mailer (SMTP, or files under the embedded default)."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def send(self, delivery: Delivery) -> SendResult:
        message = render_email(delivery)
        try:
            message.send()
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as exc:
            raise TransportError(
                f"refused by the mail server: {type(exc).__name__}", permanent=True
            ) from None
        except smtplib.SMTPResponseException as exc:
            permanent = 500 <= exc.smtp_code < 600
            raise TransportError(f"SMTP {exc.smtp_code}", permanent=permanent) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise TransportError(f"mail server unavailable: {type(exc).__name__}") from None
        return SendResult()


def transport_for(channel: Channel):
    return WebhookTransport(channel) if channel.kind == ChannelKind.WEBHOOK else EmailTransport(channel)


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
