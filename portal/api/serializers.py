"""Request and response shapes of the incident API: the web form's fields and messages, in JSON."""

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from incidents import services
from incidents.models import (
    Comment,
    Evidence,
    Impact,
    Incident,
    IncidentReport,
    Obligation,
    PersonalDataCategory,
    ReportKind,
    Severity,
    SpecificDataCategory,
    Status,
    StatusChange,
)


class IncidentContentSerializer(serializers.ModelSerializer):
    """The fields an operator writes (the web incident form), all optional for a draft update."""

    personal_data_categories = serializers.ListField(
        child=serializers.ChoiceField(choices=PersonalDataCategory.choices),
        required=False,
        label=_("Personal data categories"),
    )
    specific_data_categories = serializers.ListField(
        child=serializers.ChoiceField(choices=SpecificDataCategory.choices),
        required=False,
        label=_("Specific personal data (UU PDP Pasal 4(2))"),
    )

    class Meta:
        model = Incident
        fields = list(services.OPERATOR_FIELDS)
        extra_kwargs = {f: {"required": False} for f in services.OPERATOR_FIELDS}


class IncidentCreateSerializer(IncidentContentSerializer):
    class Meta(IncidentContentSerializer.Meta):
        extra_kwargs = {f: {"required": f in services.DRAFT_REQUIRED} for f in services.OPERATOR_FIELDS}


class StatusChangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = StatusChange
        fields = ["from_status", "to_status", "by_bssn", "reason", "created_at"]


class IncidentSerializer(serializers.ModelSerializer):
    """An incident as the operator sees it: its content, status and BSSN's public fields."""

    personal_data_categories = serializers.ListField(child=serializers.CharField())
    specific_data_categories = serializers.ListField(child=serializers.CharField())
    status = serializers.ChoiceField(choices=Status.choices)
    # A draft may leave these empty: the schema must say "" is a possible value.
    severity = serializers.ChoiceField(choices=Severity.choices, allow_blank=True)
    bssn_severity = serializers.ChoiceField(choices=Severity.choices, allow_blank=True)
    impact_confidentiality = serializers.ChoiceField(choices=Impact.choices, allow_blank=True)
    impact_integrity = serializers.ChoiceField(choices=Impact.choices, allow_blank=True)
    impact_availability = serializers.ChoiceField(choices=Impact.choices, allow_blank=True)
    reporter_email = serializers.CharField()
    technical_contact_email = serializers.CharField()

    class Meta:
        model = Incident
        fields = [
            "reference",
            "status",
            *services.OPERATOR_FIELDS,
            "bssn_severity",
            "outcome",
            "created_at",
            "updated_at",
            "submitted_at",
            "closed_at",
            "next_due_at",
        ]
        read_only_fields = fields


class ReportCreateSerializer(IncidentContentSerializer):
    """An update or the final report: the fields that changed, what changed, and whether to submit."""

    kind = serializers.ChoiceField(
        label=_("Kind of report"),
        choices=[(ReportKind.UPDATE, ReportKind.UPDATE.label), (ReportKind.FINAL, ReportKind.FINAL.label)],
    )
    summary = serializers.CharField(
        label=_("What changed since the last report"), required=False, allow_blank=True, default=""
    )
    submit = serializers.BooleanField(
        required=False,
        default=True,
        help_text="Submit the report now (default); false keeps it as the incident's one draft report.",
    )

    class Meta(IncidentContentSerializer.Meta):
        fields = ["kind", "summary", "submit", *services.OPERATOR_FIELDS]

    def validate(self, attrs):
        if attrs.get("submit", True) and not (attrs.get("summary") or "").strip():
            raise serializers.ValidationError({"summary": _("Say what changed since the last report.")})
        return attrs


class ReportSerializer(serializers.ModelSerializer):
    class Meta:
        model = IncidentReport
        fields = ["number", "kind", "summary", "data", "created_at", "submitted_at"]
        read_only_fields = fields


class CommentCreateSerializer(serializers.Serializer):
    body = serializers.CharField(label=_("Message"), max_length=10000)


class CommentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Comment
        fields = ["id", "kind", "by_bssn", "body", "created_at"]
        read_only_fields = fields


class EvidenceUploadSerializer(serializers.Serializer):
    file = serializers.FileField(label=_("File"))
    description = serializers.CharField(label=_("Description"), max_length=300, required=False, default="")


class EvidenceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Evidence
        fields = [
            "id",
            "original_name",
            "content_type",
            "size",
            "sha256",
            "description",
            "by_bssn",
            "uploaded_at",
        ]
        read_only_fields = fields


class DeadlineSerializer(serializers.ModelSerializer):
    code = serializers.CharField(source="rule.code")
    name = serializers.CharField(source="rule.name")
    state = serializers.SerializerMethodField()

    class Meta:
        model = Obligation
        fields = ["id", "code", "name", "due_at", "met_at", "waived_at", "state"]
        read_only_fields = fields

    def get_state(self, obligation: Obligation) -> str:
        return obligation.state()


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details, with `errors` (field → messages) on validation errors."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)
