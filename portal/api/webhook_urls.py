from django.urls import path

from . import webhook_views

app_name = "webhooks"

urlpatterns = [
    path("", webhook_views.endpoint_list, name="list"),
    path("<int:endpoint_id>/", webhook_views.endpoint_detail, name="detail"),
    path("<int:endpoint_id>/rotate/", webhook_views.endpoint_rotate, name="rotate"),
    path("<int:endpoint_id>/test/", webhook_views.endpoint_test, name="test"),
    path("<int:endpoint_id>/disable/", webhook_views.endpoint_disable, name="disable"),
    path("<int:endpoint_id>/enable/", webhook_views.endpoint_enable, name="enable"),
    path("<int:endpoint_id>/delete/", webhook_views.endpoint_delete, name="delete"),
    path(
        "<int:endpoint_id>/deliveries/<int:delivery_id>/resend/",
        webhook_views.delivery_resend,
        name="resend",
    ),
]
