from django.urls import path

from . import views

app_name = "incidents"

urlpatterns = [
    path("", views.incident_list, name="list"),
    path("export.csv", views.incident_export, name="export"),
    path("new/", views.incident_create, name="create"),
    path("<slug:reference>/", views.incident_detail, name="detail"),
    path("<slug:reference>/edit/", views.incident_edit, name="edit"),
    path("<slug:reference>/submit/", views.incident_submit, name="submit"),
    path("<slug:reference>/export.json", views.incident_export_json, name="export_json"),
    path("<slug:reference>/report/", views.report_edit, name="report_edit"),
    path("<slug:reference>/reports/<int:number>/", views.report_detail, name="report_detail"),
    path("<slug:reference>/messages/", views.comment_create, name="comment"),
    path("<slug:reference>/evidence/", views.evidence_upload, name="evidence_upload"),
    path("<slug:reference>/observables/", views.observable_add, name="observable_add"),
    path("<slug:reference>/evidence/<int:evidence_id>/", views.evidence_download, name="evidence_download"),
    path(
        "<slug:reference>/deadlines/<int:obligation_id>/confirm/",
        views.obligation_confirm,
        name="obligation_confirm",
    ),
]
