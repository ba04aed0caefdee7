from django.apps import apps
from django.http import HttpRequest


def _nav_templates() -> list[str]:
    # Each domain app may name a template of links for the organisation navigation
    # (AppConfig.nav_template), so apps add pages without editing the base template.
    return [c.nav_template for c in apps.get_app_configs() if getattr(c, "nav_template", None)]


def memberships(request: HttpRequest) -> dict:
    """Expose the current organisation and the user's other organisations to templates."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "current_operator": getattr(request, "operator", None),
        "current_membership": getattr(request, "membership", None),
        "app_nav_templates": _nav_templates(),
        "user_memberships": lambda: user.memberships.select_related("operator").order_by("operator__name"),
    }
