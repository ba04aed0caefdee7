from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from . import docs, views

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
]
