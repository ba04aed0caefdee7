"""Operator views for suspected-case flags (healthtech operators only; others get a 404)."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from portal.accounts.models import ALL_ROLES, WRITE_ROLES, Sector
from portal.accounts.tenancy import get_for_operator, operator_view

from . import services
from .forms import CorrectForm, FactsForm, FilterForm, FlagForm, WithdrawForm
from .models import CaseFlag, Classification, Criterion

HEALTHTECH = {Sector.HEALTHTECH}
# Words a reporter sees for the evaluator's named criteria.
CRITERION_LABELS = {
    "clinical": gettext_lazy("clinical criteria"),
    "epidemiological": gettext_lazy("epidemiological criteria"),
    "sari": gettext_lazy("severe acute respiratory illness"),
    "asymptomatic": gettext_lazy("no symptoms"),
}


# The same criteria, spelt out where a reporter reads what is still missing.
REQUIREMENT_LABELS = {
    "clinical": gettext_lazy(
        "clinical criteria (acute onset of fever and cough, or of three or more of the listed symptoms)"
    ),
    "epidemiological": gettext_lazy("an epidemiological criterion of this definition"),
    "sari": gettext_lazy(
        "severe acute respiratory illness (fever and cough, onset within 10 days, needs hospitalisation)"
    ),
    "asymptomatic": gettext_lazy("no symptoms"),
}


def _criteria_labels(names) -> list[str]:
    return [str(CRITERION_LABELS.get(n, n)) for n in names]


def _fact_labels(codes) -> list[str]:
    labels = {c.code: c.label for c in Criterion.objects.filter(code__in=list(codes))}
    extra = {"sari": _("severe acute respiratory illness"), "antigen_positive": _("positive antigen test")}
    return [str(labels.get(c) or extra.get(c, c)) for c in codes]


def _requirement_text(need) -> str:
    """Return one missing requirement (see rules._Evaluator.missing) in the reporter's words."""
    if isinstance(need, str):
        return _fact_labels([need])[0]
    if "criterion" in need:
        name = need["criterion"]
        return str(REQUIREMENT_LABELS.get(name) or CRITERION_LABELS.get(name, name))
    if "not" in need:
        return _("without %(condition)s") % {"condition": _requirement_text(need["not"])}
    if "any" in need:
        either, both = f" {_('or')} ", f" {_('and')} "
        return either.join(both.join(_requirement_text(n) for n in alt) for alt in need["any"])
    if "at_least" in need:
        return _("at least %(n)s of: %(codes)s") % {
            "n": need["at_least"],
            "codes": ", ".join(_fact_labels(need["of"])),
        }
    if "onset_within_days" in need:
        return _("symptom onset within %(n)s days") % {"n": need["onset_within_days"]}
    return _("a further condition of the definition")


def _missing_context(evaluation) -> list[str]:
    """Return, per class the facts do not meet, what it still needs."""
    return [
        _("%(class)s needs: %(requirements)s")
        % {
            "class": Classification(code).label if code in Classification.values else code,
            "requirements": "; ".join(_requirement_text(need) for need in needs),
        }
        for code, needs in evaluation.unmet
    ]


def _evaluation_context(evaluation) -> dict:
    return {
        "classification": evaluation.classification,
        "label": str(Classification(evaluation.classification).label),
        "classes": [str(Classification(c).label) for c in evaluation.matched_classes],
        "meets_definition": evaluation.meets_definition,
        "criteria": _criteria_labels(evaluation.matched_criteria),
        "facts": _fact_labels(evaluation.matched_facts),
        "missing": [] if evaluation.meets_definition else _missing_context(evaluation),
    }


@operator_view(roles=ALL_ROLES, sectors=HEALTHTECH)
def flag_list(request):
    operator = request.operator
    flags = CaseFlag.objects.for_operator(operator).select_related("definition")
    filters = FilterForm(request.GET or None)
    if filters.is_valid():
        data = filters.cleaned_data
        zone = ZoneInfo(operator.timezone)
        for key in ("classification", "status", "province"):
            if data.get(key):
                flags = flags.filter(**{key: data[key]})
        if data.get("since"):
            flags = flags.filter(created_at__gte=datetime.combine(data["since"], time.min, tzinfo=zone))
        if data.get("until"):
            end = datetime.combine(data["until"], time.min, tzinfo=zone) + timedelta(days=1)
            flags = flags.filter(created_at__lt=end)
    page = Paginator(flags, 25).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request, "cases/flag_list.html", {"page": page, "filters": filters, "query": query.urlencode()}
    )


def _render_form(request, form, evaluation=None, status=200):
    context = {"form": form, "evaluation": _evaluation_context(evaluation) if evaluation else None}
    return render(request, "cases/flag_form.html", context, status=status)


@operator_view(roles=WRITE_ROLES, sectors=HEALTHTECH)
def flag_create(request):
    """Flag a case in two steps: check the classification, then submit (JS shows it live)."""
    operator = request.operator
    if request.method != "POST":
        return _render_form(request, FlagForm(operator=operator))
    form = FlagForm(request.POST, operator=operator)
    if not form.is_valid():
        # Still show what the facts alone classify as, so the reporter sees it while fixing the rest.
        facts = FactsForm(request.POST, operator=operator)
        evaluation = None
        if facts.is_valid():
            evaluation = services.classify(
                definition=facts.cleaned_data["definition"],
                data=facts.cleaned_data,
                as_of=services.local_today(operator),
            )
        return _render_form(request, form, evaluation, status=400)
    data = form.cleaned_data
    evaluation = services.classify(
        definition=data["definition"], data=data, as_of=services.local_today(operator)
    )
    wants_submit = request.POST.get("action") == "submit"
    if (
        wants_submit
        and evaluation.meets_definition
        and data["confirm_classification"] == evaluation.classification
    ):
        identity = services.IdentityInput(
            full_name=data["full_name"],
            phone=data["phone"],
            nik=data["nik"],
            address=data["address"],
            subject_identifier=data["subject_identifier"],
        )
        try:
            flag = services.flag_case(
                operator=operator, actor=request.user, data=data, identity=identity, request=request
            )
        except ValidationError as exc:
            form.add_error(None, exc)
            return _render_form(request, form, evaluation, status=400)
        messages.success(
            request,
            _("The flag was recorded as %(classification)s and forwarded.")
            % {"classification": flag.get_classification_display()},
        )
        return redirect("cases:flag_detail", operator_slug=operator.slug, flag_id=flag.pk)
    if wants_submit:
        messages.warning(request, _("Check the classification below, then submit again."))
    # Re-bind with the shown classification, so "submit" confirms exactly what the reporter saw.
    post = request.POST.copy()
    post["confirm_classification"] = evaluation.classification
    form = FlagForm(post, operator=operator)
    form.is_valid()
    return _render_form(request, form, evaluation)


@operator_view(roles=WRITE_ROLES, sectors=HEALTHTECH)
@require_POST
def classify(request):
    """Return the classification of the posted facts as JSON (for classify.js)."""
    form = FactsForm(request.POST, operator=request.operator)
    if not form.is_valid():
        return JsonResponse({"errors": {k: [str(e) for e in v] for k, v in form.errors.items()}}, status=400)
    data = form.cleaned_data
    evaluation = services.classify(
        definition=data["definition"], data=data, as_of=services.local_today(request.operator)
    )
    return JsonResponse(_evaluation_context(evaluation))


@operator_view(roles=ALL_ROLES, sectors=HEALTHTECH)
def flag_detail(request, flag_id: int):
    flag = get_for_operator(
        CaseFlag.objects.select_related("definition", "created_by"), request.operator, pk=flag_id
    )
    identity = getattr(flag, "identity", None)
    services.audit_flag_view(flag=flag, actor=request.user, request=request)
    context = {
        "flag": flag,
        "identity_recorded": identity is not None and not identity.is_empty,
        "identity_purged": identity is not None and identity.purged_at is not None,
        "symptoms": _fact_labels(flag.symptoms),
        "epidemiological": _fact_labels(flag.epidemiological),
        "criteria": _criteria_labels(flag.evaluation.get("criteria", [])),
        "facts": _fact_labels(flag.evaluation.get("facts", [])),
        "disclosures": flag.disclosures.all(),
        # Only this operator's own flags are shown as duplicates; BSSN sees cross-operator links.
        "duplicate_of": flag.duplicate_of
        if flag.duplicate_of and flag.duplicate_of.operator_id == flag.operator_id
        else None,
        "cross_operator_duplicate": bool(
            flag.duplicate_of and flag.duplicate_of.operator_id != flag.operator_id
        ),
        "later_duplicates": flag.possible_duplicates.filter(operator=request.operator),
        "withdraw_form": WithdrawForm(),
    }
    return render(request, "cases/flag_detail.html", context)


@operator_view(roles=WRITE_ROLES, sectors=HEALTHTECH)
def flag_correct(request, flag_id: int):
    flag = get_for_operator(CaseFlag.objects.select_related("definition"), request.operator, pk=flag_id)
    if not flag.is_active:
        messages.error(request, _("A withdrawn flag cannot be corrected."))
        return redirect(flag)
    initial = {name: getattr(flag, name) for name in services.CORRECTABLE_FIELDS}
    initial["definition"] = flag.definition_id
    form = CorrectForm(request.POST or None, operator=request.operator, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            flag = services.correct_flag(
                flag=flag, actor=request.user, data=form.cleaned_data, request=request
            )
        except ValidationError as exc:
            form.add_error(None, exc)
            data = form.cleaned_data
            evaluation = services.classify(
                definition=data["definition"], data=data, as_of=services.local_today(request.operator)
            )
            if not evaluation.meets_definition:
                for line in _missing_context(evaluation):  # say what the facts lack
                    form.add_error(None, line)
        else:
            messages.success(
                request,
                _("The flag was corrected (now %(classification)s); the recipients were told.")
                % {"classification": flag.get_classification_display()},
            )
            return redirect(flag)
    status = 400 if request.method == "POST" else 200
    return render(request, "cases/flag_correct.html", {"flag": flag, "form": form}, status=status)


@operator_view(roles=WRITE_ROLES, sectors=HEALTHTECH)
@require_POST
def flag_withdraw(request, flag_id: int):
    flag = get_for_operator(CaseFlag, request.operator, pk=flag_id)
    form = WithdrawForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose why the flag is withdrawn."))
        return redirect(flag)
    try:
        services.withdraw_flag(
            flag=flag, actor=request.user, reason=form.cleaned_data["reason"], request=request
        )
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, _("The flag was withdrawn; the recipients were told."))
    return redirect(flag)


@operator_view(roles=WRITE_ROLES, sectors=HEALTHTECH)
@require_POST
def flag_stop_sharing(request, flag_id: int):
    """Withdraw the basis for sharing the identity: no message leaves with it from now on."""
    flag = get_for_operator(CaseFlag, request.operator, pk=flag_id)
    try:
        services.stop_sharing_identity(flag=flag, actor=request.user, request=request)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(
            request, _("The identity is no longer shared; messages still queued leave without it.")
        )
    return redirect(flag)


def dashboard_panel(request):
    """Return the dashboard card for healthtech operators: recent flags by classification."""
    operator = getattr(request, "operator", None)
    if operator is None or not operator.is_healthtech:
        return None
    since = timezone.now() - timedelta(days=14)
    counts = dict(
        CaseFlag.objects.for_operator(operator)
        .active()
        .filter(created_at__gte=since)
        .values_list("classification")
        .annotate(n=Count("pk"))
        .order_by()
    )
    rows = [
        (label, counts.get(code, 0)) for code, label in Classification.choices if code != Classification.NONE
    ]
    return "cases/_dashboard_panel.html", {
        "rows": rows,
        "total": sum(counts.values()),
        "can_write": request.membership.can_write,
    }
