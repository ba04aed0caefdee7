from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CasesConfig(AppConfig):
    """Suspected Covid-19 case flags: a separate app inside incidents/ (own migrations and URLs)."""

    name = "incidents.cases"
    label = "cases"
    verbose_name = _("Suspected Covid-19 cases")
    nav_template = "cases/_nav.html"
    dashboard_panel = "incidents.cases.views.dashboard_panel"

    def ready(self) -> None:
        from portal.alerts.disclosure import register

        from .services import prepare_send

        # Whether an identity leaves is decided at each send and retry, not when queued.
        register("suspected_case.*", prepare_send)
