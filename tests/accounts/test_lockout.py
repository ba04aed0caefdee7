"""Sign-in lockout through the real form: per account, per address, per (account, address).

Behind the TLS proxy every connection comes from the proxy, so the client address is
read from X-Forwarded-For; one attacker must not lock everybody out.
"""

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.urls import reverse

from portal.accounts.models import Role
from tests.conftest import PASSWORD, make_member

pytestmark = pytest.mark.django_db

PROXY = "10.0.0.2"


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.AXES_FAILURE_LIMIT = 5
    settings.TRUSTED_PROXY_NETWORKS = ["127.0.0.1/32", f"{PROXY}/32"]
    settings.TRUSTED_PROXY_COUNT = 1


def _post(email: str, password: str, *, client_ip: str, forwarded_prefix: str = ""):
    """Post the sign-in form as the proxy would forward it from `client_ip`."""
    return Client().post(
        reverse("accounts:login"),
        {"username": email, "password": password},
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR=f"{forwarded_prefix}{client_ip}",
    )


def _signed_in(response) -> bool:
    return response.status_code == 302 and "_auth_user_id" in response.client.session


def test_failures_for_one_account_from_many_addresses_lock_that_account(reporter):
    # The probe's case: 18 wrong passwords from 9 addresses, then the right one.
    for n in range(18):
        _post(reporter.email, "wrong-password", client_ip=f"203.0.113.{n % 9 + 1}")
    refused = _post(reporter.email, PASSWORD, client_ip="198.51.100.77")
    assert refused.status_code == 429
    assert "_auth_user_id" not in refused.client.session
    # The failures were counted against the account (they used to be stored without one).
    assert AccessAttempt.objects.filter(username=reporter.email).exists()


def test_account_is_counted_whatever_case_the_address_is_typed_in(reporter):
    for n in range(5):
        _post(reporter.email.upper() if n % 2 else f" {reporter.email} ", "wrong", client_ip=f"203.0.113.{n}")
    assert _post(reporter.email, PASSWORD, client_ip="198.51.100.7").status_code == 429


def test_failures_from_one_address_lock_only_that_address(operator):
    victims = [make_member(operator, Role.VIEWER, f"user{n}@acme.example") for n in range(6)]
    attacker = "203.0.113.66"
    for victim in victims[:5]:  # one try per account: no account reaches the limit
        _post(victim.email, "wrong", client_ip=attacker)
    # The attacker's address is refused even with a correct password...
    assert _post(victims[5].email, PASSWORD, client_ip=attacker).status_code == 429
    # ...while everybody else behind the same proxy signs in, the attacked accounts included.
    assert _signed_in(_post(victims[5].email, PASSWORD, client_ip="198.51.100.10"))
    assert _signed_in(_post(victims[0].email, PASSWORD, client_ip="198.51.100.11"))


def test_a_forged_forwarded_for_does_not_escape_the_address_limit(operator):
    victims = [make_member(operator, Role.VIEWER, f"user{n}@acme.example") for n in range(6)]
    attacker = "203.0.113.66"
    for n, victim in enumerate(victims[:5]):
        # The client writes its own X-Forwarded-For; the proxy appends the real address.
        _post(victim.email, "wrong", client_ip=attacker, forwarded_prefix=f"192.0.2.{n}, ")
    assert _post(victims[5].email, PASSWORD, client_ip=attacker).status_code == 429


def test_failures_for_one_account_from_one_address_lock_that_pair(reporter):
    for _ in range(5):
        _post(reporter.email, "wrong", client_ip="203.0.113.5")
    attempt = AccessAttempt.objects.get()
    assert (attempt.username, attempt.ip_address, attempt.failures_since_start) == (
        reporter.email,
        "203.0.113.5",
        5,
    )
    assert _post(reporter.email, PASSWORD, client_ip="203.0.113.5").status_code == 429


def test_fewer_failures_than_the_limit_do_not_lock(reporter):
    for _ in range(4):
        _post(reporter.email, "wrong", client_ip="203.0.113.5")
    assert _signed_in(_post(reporter.email, PASSWORD, client_ip="203.0.113.5"))


def test_without_a_configured_proxy_forwarded_for_is_ignored(settings, operator):
    settings.TRUSTED_PROXY_COUNT = 0
    victims = [make_member(operator, Role.VIEWER, f"user{n}@acme.example") for n in range(6)]
    for n, victim in enumerate(victims[:5]):
        # A direct client cannot pick a fresh address per try by writing the header.
        Client().post(
            reverse("accounts:login"),
            {"username": victim.email, "password": "wrong"},
            REMOTE_ADDR="203.0.113.66",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}",
        )
    refused = Client().post(
        reverse("accounts:login"),
        {"username": victims[5].email, "password": PASSWORD},
        REMOTE_ADDR="203.0.113.66",
        HTTP_X_FORWARDED_FOR="192.0.2.99",
    )
    assert refused.status_code == 429
