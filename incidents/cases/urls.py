from django.urls import path

from . import views

app_name = "cases"

urlpatterns = [
    path("", views.flag_list, name="flag_list"),
    path("new/", views.flag_create, name="flag_create"),
    path("classify/", views.classify, name="classify"),
    path("<int:flag_id>/", views.flag_detail, name="flag_detail"),
    path("<int:flag_id>/correct/", views.flag_correct, name="flag_correct"),
    path("<int:flag_id>/withdraw/", views.flag_withdraw, name="flag_withdraw"),
    path("<int:flag_id>/stop-sharing/", views.flag_stop_sharing, name="flag_stop_sharing"),
]
