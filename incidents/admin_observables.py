"""The BSSN admin for observables: attach indicators to any incident, and see where else they appear."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from portal.admin_counts import CappedCountAdminMixin, CappedCountPaginator
from portal.audit.services import record

from . import services
from .models import Incident, Observable
from .observables import ObservableKind, guess_kind, normalise


class IndicatorCountPaginator(CappedCountPaginator):
    """Count at most 1,000 indicators: past that a person searches or filters (20 pages of 50)."""

    cap = 1000


SHARED_CAP = 250  # each row of the "shared" list is checked against 5 million: count five pages


class SharedFilter(admin.SimpleListFilter):
    title = _("correlation")
    parameter_name = "shared"

    def lookups(self, request, model_admin):
        return [("operators", _("Seen at two or more operators (last 30 days)"))]

    def queryset(self, request, queryset):
        if self.value() != "operators":
            return queryset
        return services.observables.shared_in_window(queryset)


class ObservableAdminForm(forms.ModelForm):
    class Meta:
        model = Observable
        fields = ["incident", "kind", "value", "tlp", "note"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "kind" in self.fields:
            self.fields["kind"].required = False
            self.fields["kind"].help_text = _("Leave empty to detect it from the value.")

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk:  # kind and value are read-only once stored
            return cleaned
        value = cleaned.get("value")
        if value:
            kind = cleaned.get("kind") or guess_kind(value)
            try:
                cleaned["value"] = normalise(kind, value)
                cleaned["kind"] = self.instance.kind = kind
            except ValidationError as exc:
                self.add_error("value", exc)
        return cleaned


@admin.register(Observable)
class ObservableAdmin(CappedCountAdminMixin, admin.ModelAdmin):
    form = ObservableAdminForm
    list_display = ["value", "kind", "tlp", "incident_link", "operator", "added_by_bssn", "created_at"]
    list_filter = [SharedFilter, "kind", "tlp", "added_by_bssn"]
    list_select_related = ["incident", "operator"]
    search_fields = ["=value"]
    search_help_text = _("An exact indicator; it is normalised as when it was added.")
    raw_id_fields = ["incident"]
    paginator = IndicatorCountPaginator
    list_per_page = 50
    ordering = ["-created_at", "-id"]

    def get_queryset(self, request):
        return super().get_queryset(request).exclude(incident__status="draft")

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        paginator = super().get_paginator(request, queryset, per_page, orphans, allow_empty_first_page)
        if request.GET.get(SharedFilter.parameter_name) and getattr(paginator, "cap", None) is not None:
            paginator.cap = SHARED_CAP
        return paginator

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["incident_link", "kind", "value", "operator", "added_by", "created_at", "other_incidents"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["incident", "kind", "value", "tlp", "note"]
        return [
            "incident_link",
            "kind",
            "value",
            "tlp",
            "note",
            "operator",
            "added_by",
            "created_at",
            "other_incidents",
        ]

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            value = normalise(guess_kind(term), term)
        except ValidationError:
            value = term
        # Every kind named, so the (kind, value) index answers: the value alone has none.
        return queryset.filter(kind__in=ObservableKind.values, value__in={term, value}), False

    def has_delete_permission(self, request, obj=None):
        return False  # an indicator stays with the case; its TLP can be tightened instead

    @admin.display(description=_("incident"), ordering="incident__reference")
    def incident_link(self, obj):
        url = reverse("admin:incidents_incident_change", args=[obj.incident_id])
        return format_html('<a href="{}">{}</a>', url, obj.incident.reference)

    @admin.display(description=_("other incidents with this indicator"))
    def other_incidents(self, obj):
        incidents = list(services.incidents_sharing(observable=obj)[:50])
        if not incidents:
            return gettext("None.")
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                '<li><a href="{}">{}</a> · {} · {} · {}</li>',
                (
                    (
                        reverse("admin:incidents_incident_change", args=[i.pk]),
                        i.reference,
                        i.operator.name,
                        i.operator.get_sector_display(),
                        i.get_status_display(),
                    )
                    for i in incidents
                ),
            ),
        )

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "incident":
            kwargs["queryset"] = Incident.objects.reported()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            if not form.changed_data:
                return
            record(
                action="observable.change",
                actor=request.user,
                operator=obj.operator,
                target=obj.incident,
                changes={"observable": obj.pk, "fields": form.changed_data},
                request=request,
            )
            return
        services.attach_observables(
            incident=obj.incident,
            actor=request.user,
            entries=[(obj.kind, obj.value)],
            tlp=obj.tlp,
            note=obj.note,
            by_bssn=True,
            request=request,
        )
        stored = Observable.objects.get(incident=obj.incident, kind=obj.kind, value=obj.value)
        obj.pk = stored.pk
        obj.operator_id = stored.operator_id
