from django.contrib import admin
from django.urls import include, path
from django.views.i18n import set_language

from consent import views as consent_views
from portal import views

admin.site.site_header = "BSSN — Portal Insiden"
admin.site.site_title = "BSSN"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path(".well-known/portal-checkpoint-keys.json", views.checkpoint_keys, name="checkpoint_keys"),
    path("receipts/verify/", consent_views.receipt_verify, name="receipt_verify"),
    path("i18n/setlang/", set_language, name="set_language"),
    path("admin/", admin.site.urls),
    path("", include("portal.accounts.urls")),
    path("o/<slug:operator_slug>/incidents/", include("incidents.urls")),
    path("o/<slug:operator_slug>/cases/", include("incidents.cases.urls")),
    path("o/<slug:operator_slug>/consent/", include("consent.urls")),
    path("o/<slug:operator_slug>/alerts/", include("portal.alerts.urls")),
    path("o/<slug:operator_slug>/activity/", include("portal.audit.urls")),
    path("policy/", include("consent.public_urls")),
    path("api/", include("portal.api.urls")),
    path("o/<slug:operator_slug>/api-keys/", include("portal.api.web_urls")),
    path("o/<slug:operator_slug>/webhooks/", include("portal.api.webhook_urls")),
]
