"""BSSN staff groups and the permissions DESIGN.md gives them.

Groups are created by a data migration; permissions are (re)assigned after every
migrate, because the permissions of later apps exist only once those apps migrate.
Each app lists its BSSN permissions here as "app_label.codename".
"""

ANALYST = "BSSN analyst"
SUPERVISOR = "BSSN supervisor"

ANALYST_PERMISSIONS: set[str] = {
    "accounts.view_operator",
    "accounts.view_membership",
    "audit.view_auditevent",
    # incidents (analyst)
    "incidents.view_incident",
    "incidents.change_incident",
    "incidents.triage_incident",
    "incidents.view_incidentreport",
    "incidents.view_statuschange",
    "incidents.view_comment",
    "incidents.add_comment",
    "incidents.add_internal_note",
    "incidents.view_evidence",
    "incidents.view_obligation",
    "incidents.view_deadlinerule",
    "incidents.view_observable",
    "incidents.add_observable",
    "incidents.change_observable",
    # alerts (analyst)
    "alerts.view_authority",
    "alerts.view_channel",
    "alerts.view_routingrule",
    "alerts.view_alert",
    "alerts.view_delivery",
    "alerts.view_attempt",
    "alerts.change_delivery",
    "alerts.view_notice",
    "alerts.change_notice",
    # consent (analyst)
    "consent.view_policyversion",
    "consent.view_purpose",
    "consent.view_consentevent",
    "consent.view_consentimport",
    # suspected cases (analyst)
    "cases.view_caseflag",
    "cases.view_casedefinition",
    "cases.view_criterion",
    "cases.view_disclosure",
}

# Everything an analyst does, plus closing, reopening, waiving deadlines, and managing
# authorities and routing.
SUPERVISOR_PERMISSIONS: set[str] = ANALYST_PERMISSIONS | {
    "accounts.change_operator",
    "accounts.add_operator",
    # incidents (supervisor only)
    "incidents.close_incident",
    "incidents.reopen_incident",
    "incidents.waive_obligation",
    "incidents.extend_obligation",
    "incidents.change_deadlinerule",
    # alerts (supervisor only)
    "alerts.add_authority",
    "alerts.change_authority",
    "alerts.delete_authority",
    "alerts.add_channel",
    "alerts.change_channel",
    "alerts.delete_channel",
    "alerts.add_routingrule",
    "alerts.change_routingrule",
    "alerts.delete_routingrule",
    # consent (supervisor only)
    # suspected cases (supervisor only)
    "cases.add_casedefinition",
    "cases.change_casedefinition",
    "cases.add_criterion",
    "cases.change_criterion",
    # The decrypted identity vault: every view is audited.
    "cases.view_identity",
}


def create_groups(apps=None) -> None:
    """Create both groups (the data migration does this once)."""
    if apps is None:
        from django.apps import apps
    Group = apps.get_model("auth", "Group")
    for name in (ANALYST, SUPERVISOR):
        Group.objects.get_or_create(name=name)


def sync_group_permissions(apps=None) -> None:
    """Give both groups exactly the permissions listed here that exist in the database.

    Groups that do not exist are left alone: creating rows in a post_migrate handler
    would collide with test databases restored from a serialized copy.
    """
    if apps is None:
        from django.apps import apps
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, wanted in ((ANALYST, ANALYST_PERMISSIONS), (SUPERVISOR, SUPERVISOR_PERMISSIONS)):
        group = Group.objects.filter(name=name).first()
        if group is None:
            continue
        perms = []
        for dotted in sorted(wanted):
            app_label, codename = dotted.split(".", 1)
            perm = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if perm is not None:
                perms.append(perm)
        group.permissions.set(perms)
