import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from portal.audit.models import AuditEvent
from tests.conftest import PASSWORD, give_totp_device, totp_code

pytestmark = pytest.mark.django_db


def _sign_in(client, user, password=PASSWORD, next_url=""):
    url = reverse("accounts:login") + (f"?next={next_url}" if next_url else "")
    return client.post(url, {"username": user.email, "password": password})


def test_staff_without_a_device_cannot_open_any_admin_page(client_for, supervisor):
    c = client_for(supervisor)
    for url in ("/admin/", "/admin/accounts/operator/", "/admin/audit/auditevent/"):
        response = c.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:two_factor_setup"))


def test_staff_sets_up_totp_and_then_reaches_the_admin(client_for, supervisor):
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    c = client_for(supervisor)
    page = c.get(reverse("accounts:two_factor_setup"))
    assert b"<svg" in page.content  # the QR code
    device = TOTPDevice.objects.get(user=supervisor, confirmed=False)
    wrong = c.post(reverse("accounts:two_factor_setup"), {"token": "000000"})
    assert (
        wrong.status_code == 200 and not TOTPDevice.objects.filter(user=supervisor, confirmed=True).exists()
    )
    # django-otp throttles after a failure (1 s, doubling): a person retries a moment later.
    with time_machine.travel(timezone.now() + timezone.timedelta(seconds=5), tick=False):
        device.refresh_from_db()
        code = f"{totp(device.bin_key):06d}"
        done = c.post(reverse("accounts:two_factor_setup"), {"token": code, "next": "/admin/"})
    assert done.status_code == 200
    assert len(done.context["codes"]) == 10  # recovery codes, shown once
    assert c.get("/admin/").status_code == 200


def test_staff_with_a_device_signs_in_with_password_then_code(client, supervisor):
    give_totp_device(supervisor)
    response = _sign_in(client, supervisor, next_url="/admin/")
    assert response.status_code == 302
    # The password alone does not open the admin.
    blocked = client.get("/admin/")
    assert blocked["Location"].startswith(reverse("accounts:two_factor_verify"))
    bad = client.post(reverse("accounts:two_factor_verify"), {"token": "123456", "next": "/admin/"})
    assert bad.status_code == 200
    with time_machine.travel(timezone.now() + timezone.timedelta(seconds=5), tick=False):
        ok = client.post(
            reverse("accounts:two_factor_verify"), {"token": totp_code(supervisor), "next": "/admin/"}
        )
    assert ok["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert AuditEvent.objects.filter(action="auth.two_factor_failed", actor=supervisor).exists()


def test_a_recovery_code_works_once(client, supervisor):
    from portal.accounts.two_factor import new_recovery_codes

    give_totp_device(supervisor)
    code = new_recovery_codes(user=supervisor)[0]
    _sign_in(client, supervisor)
    assert client.post(reverse("accounts:two_factor_verify"), {"token": code})["Location"] == "/"
    client.logout()
    _sign_in(client, supervisor)
    assert client.post(reverse("accounts:two_factor_verify"), {"token": code}).status_code == 200


def test_operators_may_skip_two_factor_unless_their_organisation_requires_it(client_for, reporter, operator):
    c = client_for(reporter)
    assert c.get(operator.get_absolute_url()).status_code == 200
    operator.require_two_factor = True
    operator.save()
    response = c.get(operator.get_absolute_url())
    assert response["Location"].startswith(reverse("accounts:two_factor_setup"))


def test_five_wrong_passwords_lock_the_account_for_the_cooloff(client, reporter, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, reporter, password="wrong-password")
    locked = _sign_in(client, reporter)  # even the right password is refused now
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="auth.lockout").exists()
    with time_machine.travel(timezone.now() + settings.AXES_COOLOFF_TIME + timezone.timedelta(minutes=1)):
        assert _sign_in(client, reporter).status_code == 302
