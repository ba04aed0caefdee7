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
    # alerts (analyst)
    # consent (analyst)
    # suspected cases (analyst)
}

# Everything an analyst does, plus closing, reopening, waiving deadlines, and managing
# authorities and routing.
SUPERVISOR_PERMISSIONS: set[str] = ANALYST_PERMISSIONS | {
    "accounts.change_operator",
    "accounts.add_operator",
    # incidents (supervisor only)
    # alerts (supervisor only)
    # consent (supervisor only)
    # suspected cases (supervisor only)
}


def sync_group_permissions(apps=None) -> None:
    """Give both groups exactly the permissions listed here that exist in the database."""
    if apps is None:
        from django.apps import apps
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, wanted in ((ANALYST, ANALYST_PERMISSIONS), (SUPERVISOR, SUPERVISOR_PERMISSIONS)):
        group, _ = Group.objects.get_or_create(name=name)
        perms = []
        for dotted in sorted(wanted):
            app_label, codename = dotted.split(".", 1)
            perm = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if perm is not None:
                perms.append(perm)
        group.permissions.set(perms)
