"""The suspected-case API (healthtech only): classify, flag, correct, withdraw.

Requests are validated by the web forms themselves (FactsForm, FlagForm, CorrectForm,
WithdrawForm), so every field, rule and message is the portal's; the schema's request
shapes are derived from those forms. Then one service of incidents.cases.services runs.
"""

from django import forms as django_forms
from django.http import Http404, QueryDict
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from incidents.cases import services as case_services
from incidents.cases.forms import CorrectForm, FactsForm, FlagForm, WithdrawForm
from incidents.cases.models import CaseFlag

from .idempotency import idempotent
from .models import Scope
from .problems import Conflict
from .views import ERRORS, IDEMPOTENCY, ApiView


def serializer_for_form(form_class: type[django_forms.Form], name: str) -> type[serializers.Serializer]:
    """Return a serializer describing `form_class`'s fields, for the OpenAPI schema."""
    fields = {}
    for field_name, field in form_class.base_fields.items():
        if isinstance(field.widget, django_forms.HiddenInput) and field_name != "confirm_classification":
            continue
        options = {"required": field.required, "help_text": str(field.help_text or "") or None}
        if isinstance(field, django_forms.MultipleChoiceField):
            fields[field_name] = serializers.ListField(child=serializers.CharField(), **options)
        elif isinstance(field, django_forms.ModelChoiceField):
            fields[field_name] = serializers.IntegerField(**options)
        elif isinstance(field, django_forms.ChoiceField) and field.choices:
            choices = [(c, label) for c, label in field.choices if c != ""]
            fields[field_name] = serializers.ChoiceField(
                choices=choices, allow_blank=not field.required, **options
            )
        elif isinstance(field, django_forms.BooleanField):
            fields[field_name] = serializers.BooleanField(required=False, help_text=options["help_text"])
        elif isinstance(field, django_forms.DateField):
            fields[field_name] = serializers.DateField(allow_null=not field.required, **options)
        else:
            fields[field_name] = serializers.CharField(allow_blank=not field.required, **options)
    return type(name, (serializers.Serializer,), fields)


FactsIn = serializer_for_form(FactsForm, "CaseFactsSerializer")
FlagIn = serializer_for_form(FlagForm, "CaseFlagCreateSerializer")
CorrectIn = serializer_for_form(CorrectForm, "CaseFlagCorrectSerializer")
WithdrawIn = serializer_for_form(WithdrawForm, "CaseFlagWithdrawSerializer")


class EvaluationSerializer(serializers.Serializer):
    classification = serializers.CharField()
    meets_definition = serializers.BooleanField()
    matched_criteria = serializers.ListField(child=serializers.CharField())
    matched_facts = serializers.ListField(child=serializers.CharField())


class FlagSerializer(serializers.ModelSerializer):
    class Meta:
        model = CaseFlag
        fields = [
            "id",
            "uid",
            "classification",
            "status",
            "revision",
            "province",
            "created_at",
            "withdrawn_at",
        ]
        read_only_fields = fields


def as_form_data(data) -> QueryDict:
    """Turn a JSON object into the form data the web form reads (lists stay lists)."""
    if not isinstance(data, dict):
        raise ValidationError({"non_field_errors": [_("Send a JSON object.")]})
    query = QueryDict(mutable=True)
    for key, value in data.items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, bool):
                item = "on" if item else ""
            query.appendlist(str(key), "" if item is None else str(item))
    return query


def _valid(form: django_forms.Form) -> dict:
    if not form.is_valid():
        raise ValidationError({k: [str(e) for e in v] for k, v in form.errors.items()})
    return form.cleaned_data


def _evaluation(evaluation) -> dict:
    return {
        "classification": evaluation.classification,
        "meets_definition": evaluation.meets_definition,
        "matched_criteria": list(evaluation.matched_criteria),
        "matched_facts": list(evaluation.matched_facts),
    }


class CasesScoped(ApiView):
    read_scope = Scope.CASES_WRITE
    write_scope = Scope.CASES_WRITE

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if not request.auth.operator.is_healthtech:
            raise Http404  # as on the web: the feature does not exist for other sectors

    def get_flag(self, flag_id: str) -> CaseFlag:
        if not flag_id.isdigit() or len(flag_id) > 18:
            raise Http404
        flag = CaseFlag.objects.filter(operator=self.request.auth.operator, pk=int(flag_id)).first()
        if flag is None:
            raise Http404
        return flag


class Classify(CasesScoped):
    @extend_schema(
        operation_id="cases_classify", request=FactsIn, responses={200: EvaluationSerializer, **ERRORS}
    )
    def post(self, request):
        """Classify facts against a case definition (suspected, probable, …) without recording anything."""
        operator = request.auth.operator
        data = _valid(FactsForm(as_form_data(request.data), operator=operator))
        evaluation = case_services.classify(
            definition=data["definition"], data=data, as_of=case_services.local_today(operator)
        )
        return Response(_evaluation(evaluation))


class FlagCreate(CasesScoped):
    @extend_schema(
        operation_id="cases_flags_create",
        request=FlagIn,
        responses={201: FlagSerializer, **ERRORS},
        parameters=[IDEMPOTENCY],
    )
    @idempotent
    def post(self, request):
        """Flag a suspected case and forward it; `confirm_classification`, when sent, must match."""
        operator = request.auth.operator
        data = _valid(FlagForm(as_form_data(request.data), operator=operator))
        evaluation = case_services.classify(
            definition=data["definition"], data=data, as_of=case_services.local_today(operator)
        )
        confirmed = data.get("confirm_classification")
        if confirmed and confirmed != evaluation.classification:
            raise Conflict(
                _("The facts now classify as %(classification)s; check and send again.")
                % {"classification": evaluation.classification}
            )
        identity = case_services.IdentityInput(
            full_name=data["full_name"],
            phone=data["phone"],
            nik=data["nik"],
            address=data["address"],
            subject_identifier=data["subject_identifier"],
        )
        flag = case_services.flag_case(
            operator=operator, actor=request.user, data=data, identity=identity, request=request
        )
        return Response(FlagSerializer(flag).data, status=status.HTTP_201_CREATED)


class FlagCorrect(CasesScoped):
    @extend_schema(
        operation_id="cases_flags_correct",
        request=CorrectIn,
        responses={200: FlagSerializer, **ERRORS},
        parameters=[IDEMPOTENCY],
    )
    @idempotent
    def post(self, request, flag_id: str):
        """Correct a flag's facts or place; the recipients are told."""
        flag = self.get_flag(flag_id)
        if not flag.is_active:
            raise Conflict(_("A withdrawn flag cannot be corrected."))
        data = _valid(CorrectForm(as_form_data(request.data), operator=request.auth.operator))
        flag = case_services.correct_flag(flag=flag, actor=request.user, data=data, request=request)
        return Response(FlagSerializer(flag).data)


class FlagWithdraw(CasesScoped):
    @extend_schema(
        operation_id="cases_flags_withdraw",
        request=WithdrawIn,
        responses={200: FlagSerializer, **ERRORS},
        parameters=[IDEMPOTENCY],
    )
    @idempotent
    def post(self, request, flag_id: str):
        """Withdraw a flag with a reason; the recipients are told."""
        flag = self.get_flag(flag_id)
        data = _valid(WithdrawForm(as_form_data(request.data)))
        flag = case_services.withdraw_flag(
            flag=flag, actor=request.user, reason=data["reason"], request=request
        )
        flag.refresh_from_db()
        return Response(FlagSerializer(flag).data)
