"""The incident API: thin views over the same services the web views call.

Every view resolves objects within the key's organisation (another organisation's
object is a 404), checks the scope through `HasScope`, validates with a serializer
that carries the web form's fields and messages, and calls one service.
"""

import hashlib
from datetime import UTC

from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.decorators import api_view, authentication_classes, permission_classes, throttle_classes
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from incidents import services
from incidents.forms import IncidentFilterForm
from incidents.models import Comment, Incident
from incidents.services.base import locked

from . import serializers as s
from .idempotency import idempotent
from .models import Scope
from .problems import PreconditionFailed

ERRORS = {
    (code, "application/problem+json"): OpenApiResponse(
        s.ProblemSerializer, description="Problem details (RFC 9457)."
    )
    for code in (400, 401, 403, 404, 409, 412, 413, 415, 422, 429)
}
IDEMPOTENCY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Retries with the same key return the first response; another body with it is a 422.",
)
IF_MATCH = OpenApiParameter(
    "If-Match",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="The ETag you read; a 412 when the incident changed since.",
)


def incident_etag(incident: Incident) -> str:
    """Return a strong ETag that changes whenever the incident row is saved."""
    token = f"{incident.pk}:{incident.updated_at.isoformat()}:{incident.status}"
    return '"' + hashlib.sha256(token.encode()).hexdigest()[:32] + '"'


class IncidentPagination(CursorPagination):
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"
    ordering = ("-created_at", "-id")


class ApiView(APIView):
    """Base of every API view: times are given in UTC, whatever the portal's zone."""

    def dispatch(self, request, *args, **kwargs):
        with timezone.override(UTC):
            return super().dispatch(request, *args, **kwargs)


class IncidentScoped(ApiView):
    read_scope = Scope.INCIDENTS_READ
    write_scope = Scope.INCIDENTS_WRITE

    def get_incident(self) -> Incident:
        return get_object_or_404(
            Incident.objects.for_operator(self.request.auth.operator).select_related("operator"),
            reference=self.kwargs["reference"],
        )

    def incident_response(self, incident: Incident, *, status_code: int = 200) -> Response:
        response = Response(s.IncidentSerializer(incident).data, status=status_code)
        response["ETag"] = incident_etag(incident)
        return response


class IncidentList(IncidentScoped, generics.GenericAPIView):
    pagination_class = IncidentPagination
    serializer_class = s.IncidentSerializer

    def get_queryset(self):
        return Incident.objects.for_operator(self.request.auth.operator)

    @extend_schema(
        operation_id="incidents_list",
        parameters=[
            OpenApiParameter(
                "status", str, enum=[c for c, _ in IncidentFilterForm.base_fields["status"].choices if c]
            ),
            OpenApiParameter(
                "category", str, enum=[c for c, _ in IncidentFilterForm.base_fields["category"].choices if c]
            ),
            OpenApiParameter(
                "severity", str, enum=[c for c, _ in IncidentFilterForm.base_fields["severity"].choices if c]
            ),
        ],
        responses={200: s.IncidentSerializer(many=True), **ERRORS},
    )
    def get(self, request):
        """List the organisation's incidents, newest first, filtered like the web list."""
        form = IncidentFilterForm(request.query_params)
        if not form.is_valid():
            raise ValidationError(form.errors)
        incidents = self.get_queryset()
        for field in ("status", "category", "severity"):
            if form.cleaned_data[field]:
                incidents = incidents.filter(**{field: form.cleaned_data[field]})
        page = self.paginate_queryset(incidents)
        return self.get_paginated_response(s.IncidentSerializer(page, many=True).data)

    @extend_schema(
        operation_id="incidents_create",
        request=s.IncidentCreateSerializer,
        responses={201: s.IncidentSerializer, **ERRORS},
        parameters=[IDEMPOTENCY],
    )
    @idempotent
    def post(self, request):
        """Create a draft incident (title and category are enough; submit it when complete)."""
        serializer = s.IncidentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        incident = services.create_incident(
            operator=request.auth.operator,
            actor=request.user,
            data=serializer.validated_data,
            request=request,
        )
        response = self.incident_response(incident, status_code=status.HTTP_201_CREATED)
        response["Location"] = f"/api/v1/incidents/{incident.reference}/"
        return response


class IncidentDetail(IncidentScoped):
    @extend_schema(operation_id="incidents_read", responses={200: s.IncidentSerializer, **ERRORS})
    def get(self, request, reference: str):
        """Read one incident; its ETag goes back in If-Match when you update it."""
        return self.incident_response(self.get_incident())

    @extend_schema(
        operation_id="incidents_update_draft",
        request=s.IncidentContentSerializer,
        responses={200: s.IncidentSerializer, **ERRORS},
        parameters=[IF_MATCH],
    )
    def patch(self, request, reference: str):
        """Change fields of a draft; send If-Match with the ETag you read to avoid overwriting."""
        incident = self.get_incident()
        serializer = s.IncidentContentSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            locked(incident)
            if_match = request.headers.get("If-Match")
            if if_match is not None and if_match.strip() not in ("*", incident_etag(incident)):
                raise PreconditionFailed()
            data = {f: getattr(incident, f) for f in services.OPERATOR_FIELDS}
            data.update(serializer.validated_data)
            services.update_draft(incident=incident, actor=request.user, data=data, request=request)
        return self.incident_response(incident)


class IncidentSubmit(IncidentScoped):
    @extend_schema(
        operation_id="incidents_submit",
        request=None,
        responses={200: s.IncidentSerializer, **ERRORS},
        parameters=[IDEMPOTENCY, IF_MATCH],
    )
    @idempotent
    def post(self, request, reference: str):
        """Submit a draft as the initial report; its deadlines start to run."""
        incident = self.get_incident()
        if_match = request.headers.get("If-Match")
        if if_match is not None and if_match.strip() not in ("*", incident_etag(incident)):
            raise PreconditionFailed()
        services.submit_incident(incident=incident, actor=request.user, request=request)
        incident.refresh_from_db()
        return self.incident_response(incident)


class ReportList(IncidentScoped):
    @extend_schema(
        operation_id="incidents_reports_list", responses={200: s.ReportSerializer(many=True), **ERRORS}
    )
    def get(self, request, reference: str):
        """List the incident's submitted reports (initial, updates, final) and its draft report."""
        incident = self.get_incident()
        return Response(s.ReportSerializer(incident.reports.order_by("number", "id"), many=True).data)

    @extend_schema(
        operation_id="incidents_reports_create",
        request=s.ReportCreateSerializer,
        responses={201: s.ReportSerializer, **ERRORS},
        parameters=[IDEMPOTENCY],
    )
    @idempotent
    def post(self, request, reference: str):
        """Add an update or the final report: fields left out keep the incident's current values."""
        incident = self.get_incident()
        serializer = s.ReportCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        attrs = dict(serializer.validated_data)
        kind, summary, submit = attrs.pop("kind"), attrs.pop("summary", ""), attrs.pop("submit", True)
        data = {f: getattr(incident, f) for f in services.OPERATOR_FIELDS}
        data.update(attrs)
        with transaction.atomic():
            report = services.save_report_draft(
                incident=incident, actor=request.user, kind=kind, data=data, summary=summary, request=request
            )
            if submit:
                report = services.submit_report(report=report, actor=request.user, request=request)
        report.refresh_from_db()
        return Response(s.ReportSerializer(report).data, status=status.HTTP_201_CREATED)


class CommentList(IncidentScoped):
    @extend_schema(
        operation_id="incidents_comments_list", responses={200: s.CommentSerializer(many=True), **ERRORS}
    )
    def get(self, request, reference: str):
        """List the conversation with BSSN (without BSSN's internal notes)."""
        incident = self.get_incident()
        comments = (
            Comment.objects.visible_to_operator().filter(incident=incident).order_by("created_at", "id")
        )
        return Response(s.CommentSerializer(comments, many=True).data)

    @extend_schema(
        operation_id="incidents_comments_create",
        request=s.CommentCreateSerializer,
        responses={201: s.CommentSerializer, **ERRORS},
        parameters=[IDEMPOTENCY],
    )
    @idempotent
    def post(self, request, reference: str):
        """Send BSSN a message; while BSSN awaits information it is the answer."""
        incident = self.get_incident()
        serializer = s.CommentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        comment = services.add_operator_comment(
            incident=incident, actor=request.user, body=serializer.validated_data["body"], request=request
        )
        return Response(s.CommentSerializer(comment).data, status=status.HTTP_201_CREATED)


class EvidenceList(IncidentScoped):
    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="incidents_evidence_list", responses={200: s.EvidenceSerializer(many=True), **ERRORS}
    )
    def get(self, request, reference: str):
        """List the evidence files (name, type, size, SHA-256)."""
        incident = self.get_incident()
        return Response(s.EvidenceSerializer(incident.evidence.order_by("uploaded_at", "id"), many=True).data)

    @extend_schema(
        operation_id="incidents_evidence_upload",
        request={"multipart/form-data": s.EvidenceUploadSerializer},
        responses={201: s.EvidenceSerializer, **ERRORS},
        parameters=[IDEMPOTENCY],
    )
    @idempotent
    def post(self, request, reference: str):
        """Upload one evidence file (multipart field `file`), checked by content like the web upload."""
        incident = self.get_incident()
        serializer = s.EvidenceUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        evidence = services.add_evidence(
            incident=incident,
            actor=request.user,
            upload=serializer.validated_data["file"],
            description=serializer.validated_data["description"],
            request=request,
        )
        return Response(s.EvidenceSerializer(evidence).data, status=status.HTTP_201_CREATED)


class DeadlineList(IncidentScoped):
    @extend_schema(
        operation_id="incidents_deadlines_list", responses={200: s.DeadlineSerializer(many=True), **ERRORS}
    )
    def get(self, request, reference: str):
        """List the incident's reporting deadlines and whether each is met, waived, pending or overdue."""
        incident = self.get_incident()
        obligations = incident.obligations.select_related("rule").order_by("due_at", "id")
        return Response(s.DeadlineSerializer(obligations, many=True).data)


@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE"])
@authentication_classes([])
@permission_classes([AllowAny])
@throttle_classes([])
def not_found(request, *args, **kwargs):
    """Answer an unknown API address with problem details."""
    raise NotFound()
