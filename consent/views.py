"""Operator views of privacy policies and the consent ledger, and the public policy page."""

import csv
import json
from collections.abc import Iterator

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone, translation
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from portal.accounts.models import ADMIN_ROLES, ALL_ROLES, WRITE_ROLES, Operator
from portal.accounts.tenancy import get_for_operator, operator_view
from portal.spreadsheets import csv_cell
from portal.transparency import verification_keys

from . import imports, services, withdrawals
from .diff import side_by_side
from .forms import (
    DiffForm,
    ImportForm,
    LookupForm,
    PolicyVersionForm,
    ProcessingStoppedForm,
    PurposeForm,
    ReceiptVerifyForm,
    RecordEventForm,
)
from .models import (
    PROCESSING_STOP_SOURCE,
    ConsentEvent,
    ConsentImport,
    ImmutableError,
    ImportStatus,
    PolicyStatus,
    PolicyVersion,
    ProcessingStopObligation,
)
from .receipts import receipt_problems


def dashboard_panel(request):
    """Return the consent card of the organisation dashboard."""
    operator = getattr(request, "operator", None)
    if operator is None:
        return None
    context = {
        "current": services.current_policy(operator),
        "drafts": PolicyVersion.objects.for_operator(operator).filter(status=PolicyStatus.DRAFT).count(),
        "events": services.ledger_size(operator),
    }
    return "consent/_dashboard_panel.html", context


# --- Policies ------------------------------------------------------------------------


@operator_view(roles=ALL_ROLES)
def policy_list(request):
    versions = PolicyVersion.objects.for_operator(request.operator).order_by("-number")
    return render(request, "consent/policy_list.html", {"versions": versions})


@operator_view(roles=ADMIN_ROLES)
def policy_create(request):
    latest = PolicyVersion.objects.for_operator(request.operator).order_by("-number").first()
    initial = {}
    if latest is not None:
        initial = {f: getattr(latest, f) for f in ("title", "text_id", "text_en")}
    initial.setdefault("effective_date", timezone.localdate())
    form = PolicyVersionForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        version = services.create_policy_version(
            operator=request.operator, actor=request.user, data=form.cleaned_data, request=request
        )
        messages.success(request, _("Draft version %(number)s was created.") % {"number": version.number})
        return redirect(version)
    return render(request, "consent/policy_form.html", {"form": form, "version": None})


@operator_view(roles=ALL_ROLES)
def policy_detail(request, version_id: int):
    version = get_for_operator(PolicyVersion, request.operator, pk=version_id)
    language = translation.get_language()
    context = {
        "version": version,
        "purposes": version.purposes.all(),
        "html_id": version.html_for("id") if version.text_id else "",
        "html_en": version.html_for("en") if version.text_en else "",
        "purpose_form": PurposeForm() if version.is_draft and request.membership.is_admin else None,
        "sha_ok": version.sha256 == version.compute_sha256() if not version.is_draft else None,
        "language": language,
    }
    return render(request, "consent/policy_detail.html", context)


def _refuse_if_frozen(request, version: PolicyVersion):
    if not version.is_draft:
        messages.error(request, _("A published version cannot be changed. Create a new version instead."))
        return redirect(version)
    return None


@operator_view(roles=ADMIN_ROLES)
def policy_edit(request, version_id: int):
    version = get_for_operator(PolicyVersion, request.operator, pk=version_id)
    refused = _refuse_if_frozen(request, version)
    if refused:
        return refused
    form = PolicyVersionForm(request.POST or None, instance=PolicyVersion.objects.get(pk=version.pk))
    if request.method == "POST" and form.is_valid():
        try:
            services.update_draft(
                version=version, actor=request.user, data=form.cleaned_data, request=request
            )
        except ImmutableError:
            return _refuse_if_frozen(request, PolicyVersion.objects.get(pk=version.pk)) or redirect(version)
        messages.success(request, _("The draft was saved."))
        return redirect(version)
    return render(request, "consent/policy_form.html", {"form": form, "version": version})


@operator_view(roles=ADMIN_ROLES)
@require_POST
def purpose_add(request, version_id: int):
    version = get_for_operator(PolicyVersion, request.operator, pk=version_id)
    refused = _refuse_if_frozen(request, version)
    if refused:
        return refused
    form = PurposeForm(request.POST)
    if form.is_valid():
        try:
            services.add_purpose(version=version, actor=request.user, data=form.cleaned_data, request=request)
        except ValidationError as exc:
            form.add_error("code", exc)
        else:
            messages.success(request, _("The purpose was added."))
            return redirect(version)
    context = {
        "version": version,
        "purposes": version.purposes.all(),
        "html_id": version.html_for("id") if version.text_id else "",
        "html_en": version.html_for("en") if version.text_en else "",
        "purpose_form": form,
    }
    return render(request, "consent/policy_detail.html", context, status=400)


@operator_view(roles=ADMIN_ROLES)
@require_POST
def purpose_remove(request, version_id: int):
    version = get_for_operator(PolicyVersion, request.operator, pk=version_id)
    refused = _refuse_if_frozen(request, version)
    if refused:
        return refused
    purpose = (
        version.purposes.filter(pk=request.POST.get("purpose") or 0).first()
        if ((request.POST.get("purpose") or "").isdigit())
        else None
    )
    if purpose is None:
        messages.error(request, _("Choose a purpose of this version."))
    else:
        services.remove_purpose(purpose=purpose, actor=request.user, request=request)
        messages.success(request, _("The purpose %(code)s was removed.") % {"code": purpose.code})
    return redirect(version)


@operator_view(roles=ADMIN_ROLES)
@require_POST
def policy_publish(request, version_id: int):
    version = get_for_operator(PolicyVersion, request.operator, pk=version_id)
    try:
        services.publish_version(version=version, actor=request.user, request=request)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, _("Version %(number)s is published.") % {"number": version.number})
    return redirect(version)


@operator_view(roles=ADMIN_ROLES)
@require_POST
def policy_retire(request, version_id: int):
    version = get_for_operator(PolicyVersion, request.operator, pk=version_id)
    try:
        services.retire_version(version=version, actor=request.user, request=request)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, _("Version %(number)s is retired.") % {"number": version.number})
    return redirect(version)


@operator_view(roles=ALL_ROLES)
def policy_diff(request):
    form = DiffForm(request.GET or None, operator=request.operator)
    rows = None
    if form.is_bound and form.is_valid():
        rows = side_by_side(form.cleaned_data["a"], form.cleaned_data["b"])
    return render(request, "consent/policy_diff.html", {"form": form, "rows": rows})


# --- Ledger --------------------------------------------------------------------------


@operator_view(roles=ALL_ROLES)
def lookup(request):
    """Find a subject's consent: POST, so the identifier never appears in a URL or access log."""
    form = LookupForm(request.POST or None)
    result = None
    if request.method == "POST" and form.is_valid():
        try:
            result = services.lookup_subject(
                operator=request.operator,
                actor=request.user,
                subject_identifier=form.cleaned_data["subject_id"],
                request=request,
            )
        except ValidationError as exc:
            form.add_error("subject_id", exc)
    if result is not None:
        # Each withdrawn purpose carries its stop-processing deadline (and the confirm button).
        stops = ProcessingStopObligation.objects.filter(event_id__in=[e.record_id for e in result.current])
        by_event = {stop.event_id: stop for stop in stops}
        for event in result.current:
            event.processing_stop = by_event.get(event.record_id)
    context = {
        "form": form,
        "stopped_form": ProcessingStoppedForm(),
        "result": result,
        "now": timezone.now(),
        "events": services.ledger_size(request.operator),
    }
    return render(request, "consent/lookup.html", context)


@operator_view(roles=WRITE_ROLES)
def record_event(request):
    operator = request.operator
    with timezone.override(operator.timezone):
        form = RecordEventForm(request.POST or None, operator=operator)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                events = services.record_consent(
                    operator=operator,
                    actor=request.user,
                    subject_identifier=data["subject_id"],
                    purpose_codes=data["purposes"],
                    state=data["state"],
                    policy_version=data["policy_version"],
                    method=data["method"],
                    actor_type=data["actor_type"],
                    event_at=data["event_at"],
                    expires_at=data["expires_at"],
                    evidence={"reference": data["evidence"]} if data["evidence"] else {},
                    request=request,
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, _("%(count)s event(s) recorded.") % {"count": len(events)})
                return render(request, "consent/recorded.html", {"events": events})
        no_policy = not form.fields["policy_version"].queryset.exists()
        return render(request, "consent/record.html", {"form": form, "no_policy": no_policy})


@operator_view(roles=ALL_ROLES)
def receipt(request, record_id):
    event = get_for_operator(
        ConsentEvent.objects.select_related("policy_version", "operator"),
        request.operator,
        record_id=record_id,
    )
    services.audit_receipt(event=event, actor=request.user, request=request)
    body = json.dumps(services.receipt(event), ensure_ascii=False, indent=2)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="consent-receipt-{event.record_id}.json"'
    return response


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_stream(rows: Iterator[dict]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(services.EXPORT_COLUMNS)
    for row in rows:
        yield writer.writerow([csv_cell(row[c]) for c in services.EXPORT_COLUMNS])


def _json_stream(rows: Iterator[dict]) -> Iterator[str]:
    yield "["
    first = True
    for row in rows:
        yield ("\n" if first else ",\n") + json.dumps(row, ensure_ascii=False)
        first = False
    yield "\n]\n"


@operator_view(roles=ADMIN_ROLES)
def export_csv(request):
    services.audit_export(operator=request.operator, actor=request.user, fmt="csv", request=request)
    response = StreamingHttpResponse(
        _csv_stream(services.export_rows(operator=request.operator)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="consent-{request.operator.slug}.csv"'
    return response


@operator_view(roles=ADMIN_ROLES)
def export_json(request):
    services.audit_export(operator=request.operator, actor=request.user, fmt="json", request=request)
    response = StreamingHttpResponse(
        _json_stream(services.export_rows(operator=request.operator)),
        content_type="application/json; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="consent-{request.operator.slug}.json"'
    return response


# --- Import --------------------------------------------------------------------------


@operator_view(roles=WRITE_ROLES)
def import_upload(request):
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            consent_import = imports.import_upload(
                operator=request.operator,
                actor=request.user,
                filename=upload.name,
                data=upload.read(imports.MAX_UPLOAD_BYTES + 1),
                request=request,
            )
        except ValidationError as exc:
            form.add_error("file", exc)
        else:
            return redirect(
                "consent:import_detail", operator_slug=request.operator.slug, import_id=consent_import.pk
            )
    recent = ConsentImport.objects.for_operator(request.operator)[:10]
    return render(
        request, "consent/import.html", {"form": form, "imports": recent, "columns": _import_columns()}
    )


def _import_columns():
    from .importer import OPTIONAL_COLUMNS, REQUIRED_COLUMNS

    return {"required": REQUIRED_COLUMNS, "optional": OPTIONAL_COLUMNS}


@operator_view(roles=WRITE_ROLES)
def import_detail(request, import_id):
    """Show an import: its progress while a worker checks or imports it, then its outcome."""
    consent_import = get_for_operator(ConsentImport, request.operator, pk=import_id)
    context = {
        "imp": consent_import,
        "sample": imports.preview_sample(consent_import),
        "earlier": imports.previous_import(operator=request.operator, digest=consent_import.file_digest)
        if consent_import.status == ImportStatus.DUPLICATE
        else None,
    }
    response = render(request, "consent/import_detail.html", context)
    add_never_cache_headers(response)
    return response


@operator_view(roles=WRITE_ROLES)
def import_status(request, import_id):
    """Return an import's status and progress as JSON (polled by the progress page)."""
    consent_import = get_for_operator(ConsentImport, request.operator, pk=import_id)
    response = JsonResponse(
        {
            "status": consent_import.status,
            "in_progress": consent_import.in_progress,
            "rows_done": consent_import.rows_done,
            "rows_expected": consent_import.rows_expected,
        }
    )
    add_never_cache_headers(response)
    return response


@operator_view(roles=WRITE_ROLES)
@require_POST
def import_confirm(request, import_id):
    consent_import = get_for_operator(ConsentImport, request.operator, pk=import_id)
    try:
        imports.import_confirm(consent_import=consent_import, actor=request.user, request=request)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    return redirect("consent:import_detail", operator_slug=request.operator.slug, import_id=consent_import.pk)


@operator_view(roles=ALL_ROLES)
def import_template(request):
    """Download an example CSV with the expected columns."""
    from .importer import OPTIONAL_COLUMNS, REQUIRED_COLUMNS

    current = services.current_policy(request.operator)
    number = current.number if current else 1
    code = next(iter(sorted(current.purpose_codes())), "marketing-email") if current else "marketing-email"
    lines = [
        ",".join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS),
        f"customer-0001,{code},given,2026-03-01T09:30:00+07:00,web_form,{number},subject,,consent-banner-v3",
        f"customer-0001,{code},withdrawn,2026-04-01T10:00:00+07:00,mobile_app,{number},subject,,",
    ]
    response = HttpResponse("\n".join(lines) + "\n", content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="consent-import-example.csv"'
    return response


# --- Public policy pages -------------------------------------------------------------


def _public_operator(operator_slug: str) -> Operator:
    return get_object_or_404(Operator.objects.defer("contact_phone"), slug=operator_slug)


def public_current(request, operator_slug: str):
    """Show an operator's current published privacy policy (no sign-in)."""
    operator = _public_operator(operator_slug)
    version = services.current_policy(operator)
    if version is None:
        raise Http404("No published policy.")
    return _public_render(request, operator, version)


def public_version(request, operator_slug: str, number: int):
    """Show one published or retired version at its stable address (no sign-in)."""
    operator = _public_operator(operator_slug)
    version = get_object_or_404(PolicyVersion.objects.shown_publicly(), operator=operator, number=number)
    return _public_render(request, operator, version)


def _public_render(request, operator, version):
    language = request.GET.get("lang") or translation.get_language()
    language = "en" if language and language.startswith("en") else "id"
    context = {
        "operator": operator,
        "version": version,
        "language": language,
        "html": version.html_for(language),
        "purposes": version.purposes.all(),
        "history": PolicyVersion.objects.for_operator(operator).shown_publicly().order_by("-number"),
    }
    return render(request, "consent/public_policy.html", context)


# --- Withdrawals: the stop-processing deadlines -----------------------------------------


@operator_view(roles=ALL_ROLES)
def deadlines(request):
    """The organisation's stop-processing deadlines: open ones first, then the latest met."""
    operator = request.operator
    stops = ProcessingStopObligation.objects.for_operator(operator).select_related("event", "confirmed_by")
    open_stops = list(stops.open().order_by("due_at"))
    for stop in open_stops:
        # Masked: enough to recognise the subject, never the whole identifier on a list.
        stop.subject_masked = services.mask_identifier(stop.event.subject_identifier)
    context = {
        "open_stops": open_stops,
        "met_stops": list(stops.filter(met_at__isnull=False).order_by("-met_at")[:50]),
        "stopped_form": ProcessingStoppedForm(),
        "legal_source": PROCESSING_STOP_SOURCE,
        "now": timezone.now(),
    }
    return render(request, "consent/deadlines.html", context)


@operator_view(roles=WRITE_ROLES)
@require_POST
def processing_stop_confirm(request, stop_id: int):
    """Confirm processing stopped after a withdrawal: one service call, then back to the deadlines."""
    stop = get_for_operator(
        ProcessingStopObligation.objects.select_related("operator"), request.operator, pk=stop_id
    )
    with timezone.override(request.operator.timezone):
        form = ProcessingStoppedForm(request.POST)
        valid = form.is_valid()
    if not valid:
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("consent:deadlines", operator_slug=request.operator.slug)
    try:
        withdrawals.processing_stop_confirm(
            obligation=stop,
            actor=request.user,
            stopped_at=form.cleaned_data["stopped_at"],
            note=form.cleaned_data["note"],
            request=request,
        )
    except ValidationError as exc:
        for text in exc.messages:
            messages.error(request, text)
    else:
        messages.success(
            request,
            _("Recorded: processing stopped. The portal no longer exports this subject's identifier."),
        )
    return redirect("consent:deadlines", operator_slug=request.operator.slug)


@require_http_methods(["GET", "POST"])
def receipt_verify(request):
    """Let anyone check a consent receipt against the published keys (no sign-in, no database)."""
    form = ReceiptVerifyForm(request.POST or None, request.FILES or None)
    problems = None
    if request.method == "POST" and form.is_valid():
        problems = receipt_problems(form.cleaned_data["document"], verification_keys())
    status = 400 if request.method == "POST" and not form.is_valid() else 200
    return render(request, "consent/receipt_verify.html", {"form": form, "problems": problems}, status=status)
