from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView

from . import cases_views, consent_views, docs, views

app_name = "api"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", docs.api_docs, name="docs"),
    path("v1/incidents/", views.IncidentList.as_view(), name="incident_list"),
    path("v1/incidents/<str:reference>/", views.IncidentDetail.as_view(), name="incident_detail"),
    path("v1/incidents/<str:reference>/submit/", views.IncidentSubmit.as_view(), name="incident_submit"),
    path("v1/incidents/<str:reference>/reports/", views.ReportList.as_view(), name="report_list"),
    path("v1/incidents/<str:reference>/comments/", views.CommentList.as_view(), name="comment_list"),
    path("v1/incidents/<str:reference>/evidence/", views.EvidenceList.as_view(), name="evidence_list"),
    path("v1/incidents/<str:reference>/deadlines/", views.DeadlineList.as_view(), name="deadline_list"),
    path("v1/consent/policies/", consent_views.PolicyList.as_view(), name="consent_policy_list"),
    path("v1/consent/events/", consent_views.EventCreate.as_view(), name="consent_event_create"),
    path("v1/consent/events/bulk/", consent_views.EventBulk.as_view(), name="consent_event_bulk"),
    path("v1/consent/subjects/lookup/", consent_views.SubjectLookup.as_view(), name="consent_subject_lookup"),
    path("v1/cases/classify/", cases_views.Classify.as_view(), name="cases_classify"),
    path("v1/cases/flags/", cases_views.FlagCreate.as_view(), name="cases_flag_create"),
    path(
        "v1/cases/flags/<str:flag_id>/correct/", cases_views.FlagCorrect.as_view(), name="cases_flag_correct"
    ),
    path(
        "v1/cases/flags/<str:flag_id>/withdraw/",
        cases_views.FlagWithdraw.as_view(),
        name="cases_flag_withdraw",
    ),
    path("v1/consent/receipts/<str:record_id>/", consent_views.Receipt.as_view(), name="consent_receipt"),
    # Anything else under /api/ is a problem+json 404, not the site's HTML page.
    re_path(r"^.*$", views.not_found, name="not_found"),
]
