"""The webhooks to an organisation's own endpoints, listed in the OpenAPI 3.1 `webhooks` section.

Each body schema is the envelope around the payload builders' own schema
(incidents/webhook_payloads.py), the same document docs/schemas/operator.*.schema.json
publishes; endpoints are registered in the portal (docs/api.md, "Webhooks to your systems").
"""

from drf_spectacular.utils import OpenApiResponse, OpenApiWebhook, extend_schema

from incidents.webhook_payloads import SCHEMAS
from portal.alerts.models import OperatorEventType


def _envelope(event_type: str) -> dict:
    event_type = str(event_type)  # a plain string: the YAML renderer knows no enums
    data = {k: v for k, v in SCHEMAS[f"{event_type}/1"].items() if k != "$schema"}
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "type", "timestamp", "data"],
        "properties": {
            "id": {"type": "string", "pattern": "^msg_[0-9a-f]{32}$", "description": "Equals webhook-id."},
            "type": {"const": event_type},
            "timestamp": {"type": "string", "format": "date-time"},
            "data": data,
        },
    }


def _webhook(event_type: str) -> OpenApiWebhook:
    label = OperatorEventType(event_type).label
    event_type = str(event_type)  # a plain string: the YAML renderer knows no enums
    return OpenApiWebhook(
        name=event_type,
        decorator=extend_schema(
            summary=label,
            description=(
                "POSTed to your endpoint, signed per Standard Webhooks v1 (webhook-id, webhook-timestamp, "
                "webhook-signature) with the endpoint's secret; retried until a 2xx, 410 disables it. "
                "Schema: docs/schemas/" + event_type + ".schema.json."
            ),
            request={"application/json": _envelope(event_type)},
            responses={
                200: OpenApiResponse(description="Received (any 2xx)."),
                410: OpenApiResponse(description="Gone: the portal disables the endpoint."),
            },
        ),
    )


status_changed = _webhook(OperatorEventType.STATUS_CHANGED)
message = _webhook(OperatorEventType.MESSAGE)
information_requested = _webhook(OperatorEventType.INFORMATION_REQUESTED)
deadline_reminder = _webhook(OperatorEventType.DEADLINE_REMINDER)
deadline_overdue = _webhook(OperatorEventType.DEADLINE_OVERDUE)
