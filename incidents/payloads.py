"""Event payloads for the alert pipeline: versioned JSON documents, one builder per event.

Each payload carries what a receiving authority needs to act — the reference, the
organisation (name, sector, province), classification, times, status and counts of
personal data — and nothing more. Never here: internal notes, comment bodies,
descriptions, evidence, or the reporter's or technical contact's personal details.
The schemas (SCHEMAS) are documented in docs/incidents.md and checked by the tests.
"""

from django.conf import settings
from django.urls import reverse

from .models import Incident, IncidentReport, Obligation, StatusChange


def _time(value) -> str | None:
    return value.isoformat() if value else None


def _admin_url(incident: Incident) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("admin:incidents_incident_change", args=[incident.pk])


def _incident(incident: Incident) -> dict:
    operator = incident.operator
    return {
        "reference": incident.reference,
        "url": _admin_url(incident),
        "operator": {
            "name": operator.name,
            "sector": operator.sector,
            "province": operator.province,
            "is_iiv": operator.is_iiv,
        },
        "category": incident.category,
        "severity": incident.severity or None,
        "bssn_severity": incident.bssn_severity or None,
        "tlp": incident.tlp,
        "status": incident.status,
        "occurred_at": _time(incident.occurred_at),
        "detected_at": _time(incident.detected_at),
        "aware_at": _time(incident.aware_at),
        "submitted_at": _time(incident.submitted_at),
        "personal_data": {
            "involved": incident.personal_data_involved,
            "categories": list(incident.personal_data_categories),
            "specific_categories": list(incident.specific_data_categories),
            "data_subjects": incident.data_subjects_count,
        },
    }


def submitted(incident: Incident) -> dict:
    return {"schema": "incident.submitted/1", "incident": _incident(incident)}


def status_changed(incident: Incident, change: StatusChange) -> dict:
    return {
        "schema": "incident.status_changed/1",
        "incident": _incident(incident),
        "from_status": change.from_status,
        "to_status": change.to_status,
        "changed_at": _time(change.created_at),
        "by_bssn": change.by_bssn,
    }


def information_requested(incident: Incident, requested_at) -> dict:
    return {
        "schema": "incident.information_requested/1",
        "incident": _incident(incident),
        "requested_at": _time(requested_at),
    }


def report_added(incident: Incident, report: IncidentReport) -> dict:
    return {
        "schema": "incident.report_added/1",
        "incident": _incident(incident),
        "report": {"kind": report.kind, "number": report.number, "submitted_at": _time(report.submitted_at)},
    }


def deadline_missed(incident: Incident, obligation: Obligation) -> dict:
    return {
        "schema": "incident.deadline_missed/1",
        "incident": _incident(incident),
        "deadline": {
            "rule": obligation.rule.code,
            "name": obligation.rule.name,
            "source": obligation.rule.legal_source,
            "due_at": _time(obligation.due_at),
        },
    }


# --- JSON Schemas (draft 2020-12) --------------------------------------------------

_TIME = {"type": ["string", "null"], "format": "date-time"}
_INCIDENT_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "reference",
        "url",
        "operator",
        "category",
        "severity",
        "bssn_severity",
        "tlp",
        "status",
        "occurred_at",
        "detected_at",
        "aware_at",
        "submitted_at",
        "personal_data",
    ],
    "properties": {
        "reference": {"type": "string", "pattern": r"^INS-\d{4}-\d{6,}$"},
        "url": {"type": "string"},
        "operator": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "sector", "province", "is_iiv"],
            "properties": {
                "name": {"type": "string"},
                "sector": {"type": "string"},
                "province": {"type": "string", "pattern": r"^ID-[A-Z]{2}$"},
                "is_iiv": {"type": "boolean"},
            },
        },
        "category": {"type": "string"},
        "severity": {"type": ["string", "null"]},
        "bssn_severity": {"type": ["string", "null"]},
        "tlp": {"enum": ["clear", "green", "amber", "amber+strict", "red"]},
        "status": {"type": "string"},
        "occurred_at": _TIME,
        "detected_at": _TIME,
        "aware_at": _TIME,
        "submitted_at": _TIME,
        "personal_data": {
            "type": "object",
            "additionalProperties": False,
            "required": ["involved", "categories", "specific_categories", "data_subjects"],
            "properties": {
                "involved": {"type": "boolean"},
                "categories": {"type": "array", "items": {"type": "string"}},
                "specific_categories": {"type": "array", "items": {"type": "string"}},
                "data_subjects": {"type": ["integer", "null"], "minimum": 0},
            },
        },
    },
}


def _schema(name: str, extra: dict) -> dict:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": name,
        "type": "object",
        "additionalProperties": False,
        "required": ["schema", "incident", *extra],
        "properties": {"schema": {"const": name}, "incident": _INCIDENT_SCHEMA, **extra},
    }


SCHEMAS: dict[str, dict] = {
    "incident.submitted/1": _schema("incident.submitted/1", {}),
    "incident.status_changed/1": _schema(
        "incident.status_changed/1",
        {
            "from_status": {"type": "string"},
            "to_status": {"type": "string"},
            "changed_at": _TIME,
            "by_bssn": {"type": "boolean"},
        },
    ),
    "incident.information_requested/1": _schema("incident.information_requested/1", {"requested_at": _TIME}),
    "incident.report_added/1": _schema(
        "incident.report_added/1",
        {
            "report": {
                "type": "object",
                "additionalProperties": False,
                "required": ["kind", "number", "submitted_at"],
                "properties": {
                    "kind": {"enum": ["initial", "update", "final"]},
                    "number": {"type": "integer"},
                    "submitted_at": _TIME,
                },
            }
        },
    ),
    "incident.deadline_missed/1": _schema(
        "incident.deadline_missed/1",
        {
            "deadline": {
                "type": "object",
                "additionalProperties": False,
                "required": ["rule", "name", "source", "due_at"],
                "properties": {
                    "rule": {"type": "string"},
                    "name": {"type": "string"},
                    "source": {"type": "string"},
                    "due_at": _TIME,
                },
            }
        },
    ),
}
