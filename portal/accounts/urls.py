from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from . import views
from .forms import PasswordResetRequestForm

app_name = "accounts"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password-reset/",
        auth_views.PasswordResetView.as_view(
            form_class=PasswordResetRequestForm,  # a worker sends the e-mail (services.password_reset_send)
            success_url=reverse_lazy("accounts:password_reset_done"),
        ),
        name="password_reset",
    ),
    path("password-reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password-reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            success_url=reverse_lazy("accounts:password_reset_complete")
        ),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"
    ),
    path("login/verify/", views.two_factor_verify, name="two_factor_verify"),
    path("account/two-factor/", views.two_factor_setup, name="two_factor_setup"),
    path("invitation/<str:token>/", views.accept_invitation, name="accept_invitation"),
    path("o/<slug:operator_slug>/", views.dashboard, name="dashboard"),
    path("o/<slug:operator_slug>/profile/", views.profile, name="profile"),
    path("o/<slug:operator_slug>/members/", views.members, name="members"),
    path("o/<slug:operator_slug>/members/<int:membership_id>/role/", views.member_role, name="member_role"),
    path(
        "o/<slug:operator_slug>/members/<int:membership_id>/remove/",
        views.member_remove,
        name="member_remove",
    ),
]
