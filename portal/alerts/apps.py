from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AlertsConfig(AppConfig):
    name = "portal.alerts"
    label = "alerts"
    verbose_name = _("Alerts to authorities")
    nav_template = "alerts/_nav.html"
    dashboard_panel = "portal.alerts.views.dashboard_panel"
