from django.urls import path

from . import views

app_name = "public_policy"

# Stable, unauthenticated addresses: the current policy, and each published version.
urlpatterns = [
    path("<slug:operator_slug>/", views.public_current, name="current"),
    path("<slug:operator_slug>/v<int:number>/", views.public_version, name="version"),
]
