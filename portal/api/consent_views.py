"""The consent API: read policies, record events (one or in bulk through the CSV importer), read subjects.

Publishing policies stays in the portal. Bulk events go through the very importer the
CSV upload and the `import_consents` command use (consent.imports.import_file), so
one file of events imports all or nothing and a repeated batch is recognised.
"""

import csv
import io
import tempfile
import uuid

from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from consent import imports as consent_imports
from consent import services as consent_services
from consent.models import (
    ActorType,
    CollectionMethod,
    ConsentEvent,
    ConsentState,
    PolicyStatus,
    PolicyVersion,
)

from .idempotency import idempotent
from .models import Scope
from .views import ERRORS, IDEMPOTENCY, ApiView

MAX_BULK_EVENTS = 10_000


class PurposeSerializer(serializers.Serializer):
    code = serializers.CharField()
    description = serializers.CharField()
    legal_basis = serializers.CharField()
    retention = serializers.CharField()


class PolicySerializer(serializers.Serializer):
    number = serializers.IntegerField()
    status = serializers.CharField()
    title = serializers.CharField()
    effective_date = serializers.DateField()
    sha256 = serializers.CharField()
    purposes = PurposeSerializer(many=True, source="purposes.all")


class EventInSerializer(serializers.Serializer):
    """One decision of a subject (the web "record an event" form)."""

    subject_id = serializers.CharField(label=_("Subject identifier"), max_length=200)
    policy_version = serializers.IntegerField(label=_("Policy version"), min_value=1)
    purposes = serializers.ListField(
        label=_("Purposes"), child=serializers.CharField(max_length=50), min_length=1
    )
    state = serializers.ChoiceField(label=_("Decision"), choices=ConsentState.choices)
    method = serializers.ChoiceField(label=_("Method"), choices=CollectionMethod.choices)
    actor_type = serializers.ChoiceField(
        label=_("Given by"), choices=ActorType.choices, required=False, default=ActorType.SUBJECT
    )
    event_at = serializers.DateTimeField(label=_("Event time"), required=False, allow_null=True, default=None)
    expires_at = serializers.DateTimeField(label=_("Expires"), required=False, allow_null=True, default=None)
    evidence = serializers.CharField(
        label=_("Evidence"), max_length=500, required=False, allow_blank=True, default=""
    )


class EventSerializer(serializers.Serializer):
    record_id = serializers.UUIDField()
    seq = serializers.IntegerField()
    purpose_code = serializers.CharField()
    state = serializers.CharField()
    method = serializers.CharField()
    actor_type = serializers.CharField()
    event_at = serializers.DateTimeField()
    recorded_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    stop_processing_by = serializers.DateTimeField(allow_null=True)
    policy_version = serializers.IntegerField(source="policy_version.number")
    hash = serializers.CharField()


class BulkRowSerializer(serializers.Serializer):
    """One row of a bulk batch: the CSV import's columns, as JSON."""

    subject_id = serializers.CharField(max_length=200)
    purpose = serializers.CharField(max_length=50)
    state = serializers.CharField(max_length=20)
    event_time = serializers.CharField(
        max_length=40, help_text="ISO 8601; without offset, the organisation's zone."
    )
    method = serializers.CharField(max_length=20)
    policy_version = serializers.IntegerField(min_value=1)
    actor = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    expires_at = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    evidence = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class BulkInSerializer(serializers.Serializer):
    events = BulkRowSerializer(many=True, max_length=MAX_BULK_EVENTS, min_length=1)


class RowErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="Position in `events`, counted from 1.")
    column = serializers.CharField()
    reason = serializers.CharField()


class BulkResultSerializer(serializers.Serializer):
    status = serializers.CharField()
    rows = serializers.IntegerField()
    imported = serializers.IntegerField()
    skipped = serializers.IntegerField()
    errors = RowErrorSerializer(many=True)


class SubjectQuerySerializer(serializers.Serializer):
    subject_id = serializers.CharField(label=_("Subject identifier"), max_length=200)


class SubjectSerializer(serializers.Serializer):
    current = EventSerializer(many=True)
    history = EventSerializer(many=True)


class ConsentScoped(ApiView):
    read_scope = Scope.CONSENT_READ
    write_scope = Scope.CONSENT_WRITE


class PolicyList(ConsentScoped):
    @extend_schema(
        operation_id="consent_policies_list", responses={200: PolicySerializer(many=True), **ERRORS}
    )
    def get(self, request):
        """List the organisation's published and retired policy versions with their purposes."""
        versions = (
            PolicyVersion.objects.for_operator(request.auth.operator)
            .exclude(status=PolicyStatus.DRAFT)
            .prefetch_related("purposes")
            .order_by("-number")
        )
        return Response(PolicySerializer(versions, many=True).data)


class EventCreate(ConsentScoped):
    @extend_schema(
        operation_id="consent_events_create",
        request=EventInSerializer,
        responses={201: EventSerializer(many=True), **ERRORS},
        parameters=[IDEMPOTENCY],
    )
    @idempotent
    def post(self, request):
        """Record one subject's decision for one or more purposes (one ledger event per purpose)."""
        serializer = EventInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        operator = request.auth.operator
        version = PolicyVersion.objects.for_operator(operator).filter(number=data["policy_version"]).first()
        if version is None:
            raise ValidationError(
                {"policy_version": [_("Choose a published version of your privacy policy.")]}
            )
        events = consent_services.record_consent(
            operator=operator,
            actor=request.user,
            subject_identifier=data["subject_id"],
            purpose_codes=data["purposes"],
            state=data["state"],
            policy_version=version,
            method=data["method"],
            actor_type=data["actor_type"],
            event_at=data["event_at"],
            expires_at=data["expires_at"],
            evidence={"reference": data["evidence"]} if data["evidence"] else {},
            request=request,
        )
        return Response(EventSerializer(events, many=True).data, status=status.HTTP_201_CREATED)


BULK_COLUMNS = (
    "subject_id",
    "purpose",
    "state",
    "event_time",
    "method",
    "policy_version",
    "actor",
    "expires_at",
    "evidence",
)


class EventBulk(ConsentScoped):
    @extend_schema(
        operation_id="consent_events_bulk",
        request=BulkInSerializer,
        responses={200: BulkResultSerializer, **ERRORS},
        parameters=[IDEMPOTENCY],
    )
    @idempotent
    def post(self, request):
        """Import up to 10,000 events at once, all or nothing, through the CSV importer.

        A row with an error imports nothing and the answer lists the errors (row = position
        in `events`); a batch identical to one imported before is recognised and skipped.
        """
        serializer = BulkInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(BULK_COLUMNS)
        for row in serializer.validated_data["events"]:
            writer.writerow([row[c] for c in BULK_COLUMNS])
        with tempfile.NamedTemporaryFile(suffix=".csv") as fh:
            fh.write(buffer.getvalue().encode())
            fh.flush()
            consent_import, result = consent_imports.import_file(
                operator=request.auth.operator,
                actor=request.user,
                path=fh.name,
                filename=f"api-{timezone.now():%Y%m%dT%H%M%S}.csv",
            )
        if result is None:  # the same batch was imported before
            body = {"status": "duplicate", "rows": consent_import.row_count, "imported": 0,
                    "skipped": consent_import.row_count, "errors": []}  # fmt: skip
        else:
            body = {
                "status": consent_import.status,
                "rows": result.rows,
                "imported": result.imported,
                "skipped": result.skipped,
                # The CSV's header is line 1: line n is events[n - 2], position n - 1.
                "errors": [
                    {"row": max(e.row - 1, 0), "column": e.column, "reason": e.reason} for e in result.errors
                ],
            }
        return Response(body)


class SubjectLookup(ConsentScoped):
    # A lookup sends the identifier in the body (never in a URL, where logs keep it); it only reads.
    write_scope = Scope.CONSENT_READ

    @extend_schema(
        operation_id="consent_subjects_lookup",
        request=SubjectQuerySerializer,
        responses={200: SubjectSerializer, **ERRORS},
    )
    def post(self, request):
        """Return a subject's current decision per purpose and full history (an audited read)."""
        serializer = SubjectQuerySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            found = consent_services.lookup_subject(
                operator=request.auth.operator,
                actor=request.user,
                subject_identifier=serializer.validated_data["subject_id"],
                request=request,
            )
        current = list(
            ConsentEvent.objects.filter(record_id__in=[e.record_id for e in found.current]).select_related(
                "policy_version"
            )
        )
        return Response(
            {
                "current": EventSerializer(sorted(current, key=lambda e: e.purpose_code), many=True).data,
                "history": EventSerializer(found.history, many=True).data,
            }
        )


class Receipt(ConsentScoped):
    @extend_schema(operation_id="consent_receipts_read", responses={200: dict, **ERRORS})
    def get(self, request, record_id: str):
        """Download the consent receipt of one event (ISO/IEC TS 27560 field names)."""
        try:
            record_id = uuid.UUID(record_id)
        except ValueError:
            raise NotFound() from None
        event = get_object_or_404(
            ConsentEvent.objects.for_operator(request.auth.operator).select_related(
                "policy_version", "operator"
            ),
            record_id=record_id,
        )
        consent_services.audit_receipt(event=event, actor=request.user, request=request)
        response = Response(consent_services.receipt(event))
        response["Content-Disposition"] = f'attachment; filename="receipt-{event.record_id}.json"'
        return response
