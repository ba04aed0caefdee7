from django.urls import path

from . import views

app_name = "consent"

urlpatterns = [
    path("", views.lookup, name="lookup"),
    path("record/", views.record_event, name="record"),
    path("deadlines/", views.deadlines, name="deadlines"),
    path("deadlines/<int:stop_id>/confirm/", views.processing_stop_confirm, name="processing_stop_confirm"),
    path("receipts/<uuid:record_id>/", views.receipt, name="receipt"),
    path("export/csv/", views.export_csv, name="export_csv"),
    path("export/json/", views.export_json, name="export_json"),
    path("import/", views.import_upload, name="import"),
    path("import/example.csv", views.import_template, name="import_template"),
    path("import/<uuid:import_id>/", views.import_detail, name="import_detail"),
    path("import/<uuid:import_id>/status/", views.import_status, name="import_status"),
    path("import/<uuid:import_id>/confirm/", views.import_confirm, name="import_confirm"),
    path("policies/", views.policy_list, name="policy_list"),
    path("policies/new/", views.policy_create, name="policy_create"),
    path("policies/diff/", views.policy_diff, name="policy_diff"),
    path("policies/<int:version_id>/", views.policy_detail, name="policy_detail"),
    path("policies/<int:version_id>/edit/", views.policy_edit, name="policy_edit"),
    path("policies/<int:version_id>/purposes/add/", views.purpose_add, name="purpose_add"),
    path("policies/<int:version_id>/purposes/remove/", views.purpose_remove, name="purpose_remove"),
    path("policies/<int:version_id>/publish/", views.policy_publish, name="policy_publish"),
    path("policies/<int:version_id>/retire/", views.policy_retire, name="policy_retire"),
]
