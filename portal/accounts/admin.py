from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy as _

from .models import Invitation, Membership, Operator, User


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_active", "last_login"]
    list_filter = ["is_staff", "is_active", "groups"]
    search_fields = ["email", "full_name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        (_("Personal info"), {"fields": ["full_name", "language"]}),
        (
            _("Permissions"),
            {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]},
        ),
        (_("Important dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]


@admin.register(Operator)
class OperatorAdmin(admin.ModelAdmin):
    list_display = ["name", "sector", "is_iiv", "province", "timezone"]
    list_filter = ["sector", "is_iiv", "province"]
    search_fields = ["name", "slug", "pse_registration_number"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]
    # The contact phone is personal data: editable, never shown in the list.
    fields = [
        "name",
        "slug",
        "sector",
        "pse_registration_number",
        "is_iiv",
        "timezone",
        "province",
        "contact_email",
        "contact_phone",
        "address",
        "require_two_factor",
    ]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "operator", "role", "created_at", "expires_at", "accepted_at"]
    list_filter = ["role"]
    search_fields = ["email", "operator__name"]
    readonly_fields = ["token_hash", "invited_by", "created_at", "accepted_at"]
