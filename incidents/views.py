"""Operator-side incident pages: list, draft, submit, reports, conversation, evidence, deadlines.

Every view resolves the organisation through `operator_view` and fetches incidents
through `_get_incident`, so another organisation's incident is a 404. Operator views
read the conversation only through `Comment.objects.visible_to_operator()`.
"""

import copy
import csv
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from portal.accounts.models import WRITE_ROLES
from portal.accounts.tenancy import get_for_operator, operator_view
from portal.audit.services import record as audit_record
from portal.spreadsheets import csv_cell

from . import services, summaries
from .dashboard import operator_trends
from .forms import (
    CommentForm,
    ConfirmNoticeForm,
    EvidenceForm,
    IncidentFilterForm,
    IncidentForm,
    ObservableForm,
    ReportForm,
)
from .models import Comment, Evidence, Incident, IncidentReport, MetBy, Obligation, ReportKind

PAGE_SIZE = 25


def _in_operator_timezone(view):
    """Show and read times in the organisation's zone (WIB, WITA or WIT)."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        with timezone.override(request.operator.timezone):
            return view(request, *args, **kwargs)

    return wrapped


def _get_incident(request, reference: str) -> Incident:
    return get_for_operator(
        Incident.objects.select_related("operator"), request.operator, reference=reference
    )


def _refuse(request, exc: ValidationError | PermissionDenied) -> None:
    if isinstance(exc, PermissionDenied):
        messages.error(request, str(exc) or _("You are not allowed to do this."))
        return
    for text in exc.messages:
        messages.error(request, text)


def _filtered(request):
    form = IncidentFilterForm(request.GET or None)
    incidents = Incident.objects.for_operator(request.operator)
    if form.is_valid():
        for field in ("status", "category", "severity"):
            if form.cleaned_data[field]:
                incidents = incidents.filter(**{field: form.cleaned_data[field]})
    return form, incidents


@operator_view
@_in_operator_timezone
def incident_list(request):
    form, incidents = _filtered(request)
    page = Paginator(incidents.order_by("-created_at", "-id"), PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "incidents/list.html",
        {
            "filter_form": form,
            "page": page,
            "query": query.urlencode(),
            "now": timezone.now(),
            "can_write": request.membership.role in WRITE_ROLES,
        },
    )


EXPORT_COLUMNS = [
    "reference",
    "title",
    "status",
    "category",
    "severity",
    "bssn_severity",
    "tlp",
    "aware_at",
    "submitted_at",
    "closed_at",
    "outcome",
    "personal_data_involved",
    "data_subjects_count",
]


@operator_view
def incident_export(request):
    """Export the (filtered) incident list as CSV; no conversation, so nothing internal."""
    _form, incidents = _filtered(request)
    audit_record(
        action="incident.export", actor=request.user, operator=request.operator,
        changes={"format": "csv", "filters": {k: v[:100] for k, v in request.GET.items()}}, request=request,
    )  # fmt: skip
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="incidents-{request.operator.slug}.csv"'
    writer = csv.writer(response)
    writer.writerow(EXPORT_COLUMNS)
    for incident in incidents.order_by("-created_at", "-id").iterator(chunk_size=1000):
        writer.writerow([csv_cell(getattr(incident, column)) for column in EXPORT_COLUMNS])
    return response


@operator_view(roles=WRITE_ROLES)
@_in_operator_timezone
def incident_create(request):
    submit = request.POST.get("action") == "submit"
    initial = {"reporter_name": request.user.full_name, "reporter_email": request.user.email}
    form = IncidentForm(request.POST or None, initial=initial, complete=submit)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():  # "save and submit" is one step: all of it or nothing
                incident = services.create_incident(
                    operator=request.operator, actor=request.user, data=form.content(), request=request
                )
                if submit:
                    services.submit_incident(incident=incident, actor=request.user, request=request)
        except (ValidationError, PermissionDenied) as exc:
            _refuse(request, exc)
        else:
            messages.success(
                request, _("The incident was submitted to BSSN.") if submit else _("The draft was saved.")
            )
            return redirect(incident.get_absolute_url())
    return render(request, "incidents/form.html", {"form": form, "incident": None})


@operator_view(roles=WRITE_ROLES)
@_in_operator_timezone
def incident_edit(request, reference: str):
    incident = _get_incident(request, reference)
    if not incident.is_draft:
        messages.error(request, _("Only a draft can be edited; add an update to a submitted incident."))
        return redirect(incident.get_absolute_url())
    submit = request.POST.get("action") == "submit"
    form = IncidentForm(request.POST or None, instance=copy.copy(incident), complete=submit)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                services.update_draft(
                    incident=incident, actor=request.user, data=form.content(), request=request
                )
                if submit:
                    services.submit_incident(incident=incident, actor=request.user, request=request)
        except (ValidationError, PermissionDenied) as exc:
            _refuse(request, exc)
        else:
            messages.success(
                request, _("The incident was submitted to BSSN.") if submit else _("The draft was saved.")
            )
            return redirect(incident.get_absolute_url())
    return render(request, "incidents/form.html", {"form": form, "incident": incident})


@operator_view(roles=WRITE_ROLES)
@require_POST
def incident_submit(request, reference: str):
    incident = _get_incident(request, reference)
    try:
        services.submit_incident(incident=incident, actor=request.user, request=request)
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            labels = {f.name: f.verbose_name for f in Incident._meta.fields}
            missing = ", ".join(str(labels.get(f, f)) for f in exc.error_dict)
            messages.error(
                request, _("The report cannot be submitted yet. Complete: %(fields)s.") % {"fields": missing}
            )
            return redirect("incidents:edit", operator_slug=request.operator.slug, reference=reference)
        _refuse(request, exc)
    except PermissionDenied as exc:
        _refuse(request, exc)
    else:
        messages.success(request, _("The incident was submitted to BSSN."))
    return redirect(incident.get_absolute_url())


def _detail_context(request, incident: Incident) -> dict:
    obligations = list(incident.obligations.select_related("rule").order_by("due_at"))
    return {
        "incident": incident,
        "reports": incident.reports.filter(submitted_at__isnull=False).select_related("submitted_by"),
        "draft_report": incident.reports.filter(submitted_at__isnull=True).first(),
        "history": incident.status_changes.select_related("actor"),
        "comments": Comment.objects.visible_to_operator().filter(incident=incident).select_related("author"),
        "evidence": incident.evidence.select_related("uploaded_by"),
        "obligations": obligations,
        "now": timezone.now(),
        "can_write": request.membership.role in WRITE_ROLES,
        "comment_form": CommentForm(),
        "evidence_form": EvidenceForm(),
        "confirm_form": ConfirmNoticeForm(),
        "met_by_confirmation": MetBy.OPERATOR_CONFIRMATION,
        "observables": incident.observables.all(),
        "reported_elsewhere": services.reported_elsewhere(incident=incident),
        "observable_form": ObservableForm(initial={"tlp": incident.tlp}),
    }


@operator_view
@_in_operator_timezone
def incident_detail(request, reference: str):
    incident = _get_incident(request, reference)
    return render(request, "incidents/detail.html", _detail_context(request, incident))


@operator_view
def incident_export_json(request, reference: str):
    """The incident as the operator sees it, as JSON: reports, history, conversation (no internal notes)."""
    incident = _get_incident(request, reference)
    audit_record(
        action="incident.export", actor=request.user, operator=request.operator, target=incident,
        changes={"format": "json"}, request=request,
    )  # fmt: skip
    doc = {
        "reference": incident.reference,
        "status": incident.status,
        "outcome": incident.outcome,
        "current": services.snapshot(incident),
        "reports": [
            {
                "kind": r.kind,
                "number": r.number,
                "submitted_at": r.submitted_at.isoformat(),
                "summary": r.summary,
                "content": r.data,
            }
            for r in incident.reports.filter(submitted_at__isnull=False)
        ],
        "status_history": [
            {
                "from": c.from_status,
                "to": c.to_status,
                "at": c.created_at.isoformat(),
                "by_bssn": c.by_bssn,
                "reason": c.reason_display,
            }
            for c in incident.status_changes.all()
        ],
        "conversation": [
            {"kind": c.kind, "by_bssn": c.by_bssn, "at": c.created_at.isoformat(), "message": c.body}
            for c in Comment.objects.visible_to_operator().filter(incident=incident)
        ],
        "evidence": [
            {
                "name": e.original_name,
                "type": e.content_type,
                "size": e.size,
                "sha256": e.sha256,
                "uploaded_at": e.uploaded_at.isoformat(),
            }
            for e in incident.evidence.all()
        ],
        "deadlines": [
            {
                "rule": o.rule.code,
                "name": o.rule.name,
                "legal_source": o.rule.legal_source,
                "counted_from": o.rule.anchor,
                "due_at": o.due_at.isoformat(),
                "met_at": o.met_at.isoformat() if o.met_at else None,
                "extended_at": o.extended_at.isoformat() if o.extended_at else None,
                "extension_reason": o.extension_reason,
                "state": o.state(),
            }
            for o in incident.obligations.select_related("rule")
        ],
    }
    response = JsonResponse(doc, json_dumps_params={"ensure_ascii": False, "indent": 2})
    response["Content-Disposition"] = f'attachment; filename="{incident.reference}.json"'
    return response


@operator_view(roles=WRITE_ROLES)
@_in_operator_timezone
def report_edit(request, reference: str):
    """Write (or continue) the one draft update or final report, then save it or submit it."""
    incident = _get_incident(request, reference)
    if incident.is_draft or incident.is_closed:
        messages.error(
            request,
            _("Submit the initial report first.")
            if incident.is_draft
            else _("This incident is closed; ask BSSN to reopen it to add a report."),
        )
        return redirect(incident.get_absolute_url())
    draft = incident.reports.filter(submitted_at__isnull=True).first()
    if draft is not None:
        initial = {**services.report_data(draft), "kind": draft.kind, "summary": draft.summary}
    else:
        kind = request.GET.get("kind")
        initial = {
            **{f: getattr(incident, f) for f in services.OPERATOR_FIELDS},
            "kind": kind if kind in (ReportKind.UPDATE, ReportKind.FINAL) else ReportKind.UPDATE,
        }
    submit = request.POST.get("action") == "submit"
    form = ReportForm(request.POST or None, initial=initial, complete=submit)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                report = services.save_report_draft(
                    incident=incident,
                    actor=request.user,
                    kind=form.cleaned_data["kind"],
                    data=form.content(),
                    summary=form.cleaned_data["summary"],
                    request=request,
                )
                if submit:
                    services.submit_report(report=report, actor=request.user, request=request)
        except (ValidationError, PermissionDenied) as exc:
            _refuse(request, exc)
        else:
            messages.success(
                request,
                _("The report was submitted to BSSN.") if submit else _("The draft report was saved."),
            )
            return redirect(incident.get_absolute_url())
    return render(request, "incidents/report_form.html", {"form": form, "incident": incident, "draft": draft})


@operator_view
@_in_operator_timezone
def report_detail(request, reference: str, number: int):
    incident = _get_incident(request, reference)
    report = get_object_or_404(
        IncidentReport.objects.select_related("submitted_by"),
        incident=incident,
        number=number,
        submitted_at__isnull=False,
    )
    form = IncidentForm(initial=services.report_data(report))
    return render(
        request, "incidents/report_detail.html", {"incident": incident, "report": report, "form": form}
    )


@operator_view(roles=WRITE_ROLES)
@require_POST
def comment_create(request, reference: str):
    incident = _get_incident(request, reference)
    form = CommentForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Write a message."))
    else:
        try:
            comment = services.add_operator_comment(
                incident=incident, actor=request.user, body=form.cleaned_data["body"], request=request
            )
        except (ValidationError, PermissionDenied) as exc:
            _refuse(request, exc)
        else:
            messages.success(
                request,
                _("Your answer was sent; BSSN resumes the case.")
                if comment.kind == "answer"
                else _("Your message was sent."),
            )
    return redirect(incident.get_absolute_url() + "#conversation")


@operator_view(roles=WRITE_ROLES)
@require_POST
def evidence_upload(request, reference: str):
    incident = _get_incident(request, reference)
    form = EvidenceForm(request.POST, request.FILES)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
    else:
        try:
            evidence = services.add_evidence(
                incident=incident,
                actor=request.user,
                upload=form.cleaned_data["file"],
                description=form.cleaned_data["description"],
                request=request,
            )
        except (ValidationError, PermissionDenied) as exc:
            _refuse(request, exc)
        else:
            messages.success(request, _("%(name)s was uploaded.") % {"name": evidence.original_name})
    return redirect(incident.get_absolute_url() + "#evidence")


@operator_view
def evidence_download(request, reference: str, evidence_id: int):
    incident = _get_incident(request, reference)
    evidence = get_object_or_404(Evidence, incident=incident, pk=evidence_id)
    return serve_evidence(request, evidence)


def serve_evidence(request, evidence: Evidence) -> FileResponse:
    """Stream a private evidence file as an attachment, after recording the download."""
    if evidence.purged_at is not None:
        return render(request, "incidents/evidence_purged.html", {"evidence": evidence}, status=410)
    try:
        handle = evidence.file.open("rb")
    except FileNotFoundError:
        raise Http404("The file is missing from storage.") from None
    services.record_evidence_download(evidence=evidence, actor=request.user, request=request)
    response = FileResponse(
        handle, as_attachment=True, filename=evidence.original_name, content_type=evidence.content_type
    )
    response["Cache-Control"] = "private, no-store"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@operator_view(roles=WRITE_ROLES)
@require_POST
def obligation_confirm(request, reference: str, obligation_id: int):
    incident = _get_incident(request, reference)
    obligation = get_object_or_404(
        Obligation.objects.select_related("rule", "incident__operator"), incident=incident, pk=obligation_id
    )
    with timezone.override(request.operator.timezone):
        form = ConfirmNoticeForm(request.POST)
        valid = form.is_valid()
    if not valid:
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
    else:
        try:
            services.confirm_notice(
                obligation=obligation,
                actor=request.user,
                request=request,
                given_at=form.cleaned_data["given_at"],
                note=form.cleaned_data["note"],
            )
        except (ValidationError, PermissionDenied) as exc:
            _refuse(request, exc)
        else:
            messages.success(request, _("The deadline is recorded as met."))
    return redirect(incident.get_absolute_url() + "#deadlines")


def dashboard_panel(request):
    """The dashboard card: open incidents and the next deadline (AppConfig.dashboard_panel)."""
    incidents = Incident.objects.for_operator(request.operator)
    open_obligations = Obligation.objects.open().filter(incident__operator=request.operator)
    now = timezone.now()
    panel = {
        "drafts": incidents.filter(status="draft").count(),
        "open": incidents.exclude(status__in=["draft", "closed", "rejected", "duplicate"]).count(),
        "overdue": open_obligations.filter(due_at__lte=now).count(),
        "next": open_obligations.filter(due_at__gt=now)
        .select_related("rule", "incident")
        .order_by("due_at")
        .first(),
        "now": now,
        "refresh_minutes": settings.DASHBOARD_REFRESH_MINUTES,
        "trends": operator_trends(operator=request.operator, now=now, summary=summaries.for_operator_pages()),
    }
    return "incidents/dashboard_panel.html", panel


@operator_view(roles=WRITE_ROLES)
@_in_operator_timezone
@require_POST
def observable_add(request, reference: str):
    """Attach pasted indicators; with a line in error, show the page again with the paste, saving nothing."""
    incident = _get_incident(request, reference)
    form = ObservableForm(request.POST)
    if form.is_valid():
        try:
            added = services.attach_observables(
                incident=incident,
                actor=request.user,
                entries=form.cleaned_data["entries"],
                tlp=form.cleaned_data["tlp"],
                note=form.cleaned_data["note"],
                request=request,
            )
        except (ValidationError, PermissionDenied) as exc:
            _refuse(request, exc)
        else:
            messages.success(request, _("%(count)d indicator(s) added.") % {"count": len(added)})
        return redirect(incident.get_absolute_url() + "#observables")
    context = _detail_context(request, incident) | {"observable_form": form}
    return render(request, "incidents/detail.html", context, status=400)
