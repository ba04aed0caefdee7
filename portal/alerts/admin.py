"""BSSN admin for authorities, channels, routing rules, alerts, deliveries and e-mails to people."""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import notices, services
from .models import (
    Alert,
    Attempt,
    Authority,
    Channel,
    ChannelKind,
    Delivery,
    DeliveryStatus,
    EventType,
    Notice,
    NoticeStatus,
    RoutingRule,
)

BACKLOG_CHOICES = [
    ("release", _("Send the held alerts, oldest first")),
    ("discard", _("Discard the held alerts (they are listed as failed)")),
]


class ChannelForm(forms.ModelForm):
    """An authority's channel (organisations manage their own endpoints in the portal)."""

    event_types = forms.MultipleChoiceField(
        label=_("event types"),
        choices=EventType.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Event types this channel wants; none ticked means every event type."),
    )
    held_alerts = forms.ChoiceField(
        label=_("held alerts"),
        choices=BACKLOG_CHOICES,
        initial="release",
        required=False,
        help_text=_("When a disabled channel is enabled again: what to do with the alerts it held."),
    )

    class Meta:
        model = Channel
        fields = [
            "authority",
            "kind",
            "name",
            "email",
            "url",
            "event_types",
            "enabled",
            "held_alerts",
            "disabled_reason",
            "is_default",
        ]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "authority" in self.fields:
            self.fields["authority"].required = True


class ChannelInline(admin.StackedInline):
    model = Channel
    form = ChannelForm
    extra = 0
    show_change_link = True
    fields = ["kind", "name", "email", "url", "event_types", "enabled", "is_default"]


class RoutingRuleInline(admin.TabularInline):
    model = RoutingRule
    extra = 0


@admin.register(Authority)
class AuthorityAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "province", "language", "channel_count"]
    list_filter = ["language", "province"]
    search_fields = ["name", "code"]
    inlines = [ChannelInline, RoutingRuleInline]

    @admin.display(description=_("channels"))
    def channel_count(self, obj: Authority) -> int:
        return obj.channels.count()

    def save_formset(self, request, form, formset, change):
        # New webhook endpoints added inline get their secret here, shown once.
        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            obj.delete()
        for obj in instances:
            secret = None
            if isinstance(obj, Channel) and obj.is_webhook and not obj.secret:
                secret = obj.rotate_secret(overlap=timedelta(0))
            obj.save()
            if secret:
                _show_secret_once(request, obj, secret)
        formset.save_m2m()


def _show_secret_once(request, channel: Channel, secret: str) -> None:
    messages.warning(
        request,
        format_html(
            _(
                "Signing secret of {channel}: <code>{secret}</code> — copy it now and give it to the "
                "authority; it is not shown again."
            ),
            channel=channel,
            secret=secret,
        ),
    )


class OwnerFilter(admin.SimpleListFilter):
    """Authorities' channels, or organisations' own webhook endpoints."""

    title = _("owner")
    parameter_name = "owner"

    def lookups(self, request, model_admin):
        return [("authority", _("Authorities")), ("organisation", _("Organisations"))]

    def queryset(self, request, queryset):
        prefix = "channel__" if queryset.model is Delivery else ""
        if self.value() == "authority":
            return queryset.filter(**{f"{prefix}operator__isnull": True})
        if self.value() == "organisation":
            return queryset.filter(**{f"{prefix}operator__isnull": False})
        return queryset


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    """Authorities' channels; organisations' own endpoints are listed read-only (they manage them)."""

    form = ChannelForm
    list_display = ["owner", "kind", "address", "enabled", "is_default", "has_previous_secret"]
    list_filter = [OwnerFilter, "kind", "enabled", "is_default", "authority"]
    search_fields = ["authority__name", "operator__name", "email", "url"]
    readonly_fields = ["previous_secret_expires_at", "held_count"]
    actions = ["send_test_alert", "rotate_secret", "enable_and_release", "enable_and_discard"]

    @admin.display(description=_("owner"), ordering="authority__name")
    def owner(self, obj: Channel) -> str:
        return str(obj.authority) if obj.authority_id else f"{obj.operator} ({_('organisation')})"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("authority", "operator")

    def has_change_permission(self, request, obj=None) -> bool:
        # An organisation's endpoint is its own: BSSN sees it, the organisation changes it.
        if obj is not None and obj.owned_by_operator:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.owned_by_operator:
            return False
        return super().has_delete_permission(request, obj)

    @admin.display(description=_("alerts held"))
    def held_count(self, obj: Channel) -> int:
        return obj.deliveries.filter(status=DeliveryStatus.HELD).count() if obj.pk else 0

    @admin.display(description=_("old secret still signing"), boolean=True)
    def has_previous_secret(self, obj: Channel) -> bool:
        return len(obj.signing_secrets()) > 1

    def save_model(self, request, obj, form, change):
        secret = None
        if obj.kind == ChannelKind.WEBHOOK and not obj.secret:
            secret = obj.rotate_secret(overlap=timedelta(0))
        enabling = change and obj.enabled and "enabled" in form.changed_data
        if enabling:
            # Enabled again through the form: the service does it, with the backlog choice.
            obj.enabled = False
        super().save_model(request, obj, form, change)
        if enabling:
            release = form.cleaned_data.get("held_alerts") != "discard"
            self._enable(request, [obj], release=release)
        if secret:
            _show_secret_once(request, obj, secret)

    def _enable(self, request, channels, *, release: bool) -> None:
        count = sum(
            services.enable_channel(channel=c, release=release, actor=request.user, request=request)
            for c in channels
        )
        if release:
            message = ngettext("Enabled; %d held alert queued.", "Enabled; %d held alerts queued.", count)
        else:
            message = ngettext(
                "Enabled; %d held alert discarded.", "Enabled; %d held alerts discarded.", count
            )
        self.message_user(request, message % count)

    @admin.action(description=_("Enable and send the held alerts, oldest first"))
    def enable_and_release(self, request, queryset):
        # The actions act on authorities' channels only, whatever else was ticked.
        self._enable(request, list(queryset.of_authorities()), release=True)

    @admin.action(description=_("Enable and discard the held alerts"))
    def enable_and_discard(self, request, queryset):
        self._enable(request, list(queryset.of_authorities()), release=False)

    @admin.action(description=_("Send a test alert"))
    def send_test_alert(self, request, queryset):
        queryset = queryset.of_authorities()
        for channel in queryset:
            services.send_test_alert(channel=channel, actor=request.user, request=request)
        self.message_user(
            request,
            ngettext(
                "Test alert queued for %d channel.", "Test alerts queued for %d channels.", len(queryset)
            )
            % len(queryset),
        )

    @admin.action(description=_("Rotate the signing secret (the old one signs for a while longer)"))
    def rotate_secret(self, request, queryset):
        for channel in queryset.of_authorities().filter(kind=ChannelKind.WEBHOOK):
            secret = services.rotate_secret(channel=channel, actor=request.user, request=request)
            _show_secret_once(request, channel, secret)


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    list_display = ["event_pattern", "sector", "province", "authority", "enabled", "note"]
    list_filter = ["event_pattern", "sector", "enabled", "authority"]
    list_editable = ["enabled"]
    search_fields = ["authority__name", "note"]
    autocomplete_fields = ["authority"]


class AttemptInline(admin.TabularInline):
    model = Attempt
    extra = 0
    can_delete = False
    fields = ["number", "started_at", "status_code", "latency_ms", "outcome", "error"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    show_change_link = True
    fields = [
        "authority",
        "kind",
        "address",
        "status",
        "attempt_count",
        "next_attempt_at",
        "delivered_at",
        "last_error",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ResendForm(forms.Form):
    channel = forms.ModelChoiceField(
        label=_("channel"),
        queryset=Channel.objects.of_authorities().select_related("authority"),
        help_text=_("Any channel, whatever the routing rules say; a disabled one holds the alerts."),
    )


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "event_type", "operator", "province", "unrouted", "delivery_summary"]
    list_filter = ["event_type", "unrouted", "deliveries__status", "deliveries__authority"]
    search_fields = ["uuid", "operator__name"]
    date_hierarchy = "created_at"
    inlines = [DeliveryInline]
    fields = [
        "uuid",
        "event_type",
        "operator",
        "sector",
        "province",
        "subject_type",
        "subject_id",
        "unrouted",
        "created_at",
        "body",
    ]
    readonly_fields = fields

    actions = ["resend"]

    def has_resend_permission(self, request) -> bool:
        return request.user.has_perm("alerts.change_delivery")

    @admin.action(description=_("Send the selected alerts (again) to a channel"), permissions=["resend"])
    def resend(self, request, queryset):
        form = ResendForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            channel = form.cleaned_data["channel"]
            # An organisation's own events never go to an authority.
            alerts = list(queryset.to_authorities())
            for alert in alerts:
                services.resend_alert(alert=alert, channel=channel, actor=request.user, request=request)
            self.message_user(
                request,
                ngettext(
                    "%(n)d alert queued for %(channel)s.",
                    "%(n)d alerts queued for %(channel)s.",
                    len(alerts),
                )
                % {"n": len(alerts), "channel": channel},
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Send alerts to a channel"),
            "queryset": queryset,
            "form": form,
            "action": "resend",
            "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/alerts/alert/resend.html", context)

    @admin.display(description=_("deliveries"))
    def delivery_summary(self, obj: Alert) -> str:
        counts: dict[str, int] = {}
        for status in obj.deliveries.values_list("status", flat=True):
            counts[status] = counts.get(status, 0) + 1
        return ", ".join(f"{DeliveryStatus(s).label}: {n}" for s, n in sorted(counts.items()))

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("operator").prefetch_related("deliveries")


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "event_type",
        "recipient",
        "kind",
        "address",
        "status",
        "attempt_count",
        "next_attempt_at",
        "last_error",
    ]
    list_filter = ["status", OwnerFilter, "kind", "authority", "alert__event_type"]
    search_fields = ["address", "authority__name", "alert__operator__name", "alert__uuid"]
    inlines = [AttemptInline]
    actions = ["retry", "resend"]
    fields = [
        "alert",
        "authority",
        "channel",
        "kind",
        "address",
        "status",
        "attempt_count",
        "next_attempt_at",
        "claimed_at",
        "delivered_at",
        "last_error",
        "created_at",
    ]
    readonly_fields = fields

    @admin.display(description=_("event"))
    def event_type(self, obj: Delivery) -> str:
        return obj.alert.get_event_type_display()

    @admin.display(description=_("recipient"))
    def recipient(self, obj: Delivery) -> str:
        """The authority, or the organisation whose own endpoint it is."""
        if obj.authority_id:
            return str(obj.authority)
        return f"{obj.alert.operator} ({_('organisation')})"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("alert__operator", "authority")

    def has_change_permission(self, request, obj=None) -> bool:
        # The retry action needs "change"; the form itself stays read-only.
        return request.user.has_perm("alerts.change_delivery")

    @admin.action(description=_("Retry the selected failed deliveries"), permissions=["change"])
    def retry(self, request, queryset):
        retried = sum(
            services.retry_delivery(delivery=d, actor=request.user, request=request)
            for d in queryset.filter(status=DeliveryStatus.DEAD)
        )
        self.message_user(
            request, ngettext("%d delivery queued again.", "%d deliveries queued again.", retried) % retried
        )

    @admin.action(
        description=_("Send the selected deliveries again, whatever their state"), permissions=["change"]
    )
    def resend(self, request, queryset):
        deliveries = list(queryset.select_related("alert__operator", "channel"))
        for delivery in deliveries:
            services.resend_alert(
                alert=delivery.alert, channel=delivery.channel, actor=request.user, request=request
            )
        self.message_user(
            request,
            ngettext("%d delivery queued again.", "%d deliveries queued again.", len(deliveries))
            % len(deliveries),
        )


class NoticeTemplateFilter(admin.SimpleListFilter):
    """Filter e-mails by what they announce, listed by label rather than template code."""

    title = _("template")
    parameter_name = "template"

    def lookups(self, request, model_admin):
        codes = Notice.objects.order_by().values_list("template", flat=True).distinct()
        return sorted(((c, Notice(template=c).template_label) for c in codes), key=lambda item: item[1])

    def queryset(self, request, queryset):
        return queryset.filter(template=self.value()) if self.value() else queryset


@admin.register(Notice)
class NoticeAdmin(ReadOnlyAdmin):
    """E-mails to people: whether they went out. Recipients and text stay encrypted, not shown."""

    list_display = [
        "created_at",
        "template_label",
        "operator",
        "status",
        "attempt_count",
        "sent_at",
        "last_error",
    ]
    list_filter = ["status", NoticeTemplateFilter]
    search_fields = ["operator__name"]
    actions = ["retry"]
    fields = [
        "template_label",
        "operator",
        "status",
        "attempt_count",
        "next_attempt_at",
        "claimed_at",
        "sent_at",
        "last_error",
        "created_at",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("operator")

    @admin.display(description=_("template"), ordering="template")
    def template_label(self, obj: Notice) -> str:
        return obj.template_label

    def has_change_permission(self, request, obj=None) -> bool:
        # The retry action needs "change"; the form itself stays read-only.
        return request.user.has_perm("alerts.change_notice")

    @admin.action(description=_("Retry the selected failed e-mails"), permissions=["change"])
    def retry(self, request, queryset):
        retried = sum(
            notices.retry_notice(notice=n, actor=request.user, request=request)
            for n in queryset.filter(status=NoticeStatus.DEAD)
        )
        self.message_user(
            request, ngettext("%d e-mail queued again.", "%d e-mails queued again.", retried) % retried
        )
