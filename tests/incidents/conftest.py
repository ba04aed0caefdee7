import pytest
from django.test import Client

from portal.accounts.models import Role
from tests.conftest import make_member, make_operator


@pytest.fixture(autouse=True)
def deadline_rules(request):
    """Restore the migration's deadline rules where a transactional test flushed them."""
    if "db" in request.fixturenames or request.node.get_closest_marker("django_db"):
        from incidents.seed import seed_deadline_rules

        request.getfixturevalue("db")
        seed_deadline_rules()


@pytest.fixture(autouse=True)
def private_storage(tmp_path, settings):
    """Keep each test's evidence files in its own folder."""
    settings.PRIVATE_STORAGE_ROOT = tmp_path / "private"
    settings.BSSN_NOTIFY_EMAILS = ["csirt@bssn.example"]
    return settings.PRIVATE_STORAGE_ROOT


def staff_client(user) -> Client:
    """Sign BSSN staff in on a fresh client, with the second factor already verified."""
    client = Client()
    client.force_login(user)
    try:
        from django_otp import DEVICE_ID_SESSION_KEY
        from django_otp.plugins.otp_totp.models import TOTPDevice
    except ImportError:  # two-factor sign-in not installed
        return client
    device, _ = TOTPDevice.objects.get_or_create(user=user, name="test", defaults={"confirmed": True})
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


@pytest.fixture
def analyst_client(analyst) -> Client:
    return staff_client(analyst)


@pytest.fixture
def supervisor_client(supervisor) -> Client:
    return staff_client(supervisor)


@pytest.fixture
def iiv_operator(db):
    return make_operator("vital", is_iiv=True)


@pytest.fixture
def iiv_reporter(iiv_operator):
    return make_member(iiv_operator, Role.REPORTER)


@pytest.fixture
def other_reporter(other_operator):
    return make_member(other_operator, Role.REPORTER)
