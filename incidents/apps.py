from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = _("Security incidents")
    # Read by portal.accounts: a dashboard card and a link in the organisation navigation.
    dashboard_panel = "incidents.views.dashboard_panel"
    nav_template = "incidents/nav.html"
