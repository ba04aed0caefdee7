from django.urls import path

from . import web_views

app_name = "api_keys"

urlpatterns = [
    path("", web_views.key_list, name="list"),
    path("<int:key_id>/revoke/", web_views.key_revoke, name="revoke"),
]
