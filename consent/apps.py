from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConsentConfig(AppConfig):
    name = "consent"
    verbose_name = _("Privacy policies and consent")
    nav_template = "consent/_nav.html"
    dashboard_panel = "consent.views.dashboard_panel"
