"""Shared fixtures: the personas of STYLE.md and the service-backed test gates.

Service-backed tests are skipped with a reason on a machine without the service;
under CI (CI=true) any skip fails the run, so CI proves nothing was skipped.
"""

import os
import shutil
import socket
from urllib.parse import urlparse

import pytest
from django.db import connection

from portal.accounts.models import Membership, Operator, Role, Sector, User

PASSWORD = "correct-horse-battery-staple-42"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _redis_up() -> bool:
    if not TEST_REDIS_URL:
        return False
    parsed = urlparse(TEST_REDIS_URL)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=1):
            return True
    except OSError:
        return False


REDIS_UP = _redis_up()


def pytest_collection_modifyitems(config, items):
    postgres = connection.vendor == "postgresql"
    for item in items:
        if "postgres" in item.keywords and not postgres:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://..."))
        if ("redis" in item.keywords or "celery_worker" in item.keywords) and not REDIS_UP:
            item.add_marker(
                pytest.mark.skip(reason="needs Redis: set TEST_REDIS_URL=redis://127.0.0.1:6379/15")
            )
        if "browser" in item.keywords and not CHROMIUM:
            item.add_marker(pytest.mark.skip(reason="needs Debian's chromium (apt-get install chromium)"))


_skipped: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if IN_CI and _skipped and exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if IN_CI and _skipped:
        terminalreporter.write_line(
            f"CI=true: {len(_skipped)} test(s) were skipped; in CI nothing may be skipped.", red=True
        )


@pytest.fixture(autouse=True)
def notices_sent_on_commit(request, monkeypatch):
    """Send e-mails to people in-process when their transaction commits, as a worker would.

    Their task goes to a broker no test worker reads, so tests about what people
    receive would otherwise see nothing. Tests marked `notice_queue` (the outbox's
    own tests) and those with a real worker keep the real queue.
    """
    if request.node.get_closest_marker("notice_queue") or request.node.get_closest_marker("celery_worker"):
        return
    from portal.alerts import notices

    def send_now(*, notice_ids, countdown=None):
        for notice_id in notice_ids:
            notices.send_notice(notice_id=notice_id)
        return len(notice_ids)

    monkeypatch.setattr(notices, "enqueue_notices", send_now)


@pytest.fixture(autouse=True)
def checkpoint_store(settings, tmp_path):
    """Give every test its own checkpoint store, so no test meets checkpoints of another."""
    settings.CHECKPOINT_STORE_DIR = tmp_path / "checkpoints"
    return settings.CHECKPOINT_STORE_DIR


# --- Personas -----------------------------------------------------------------


def make_operator(slug: str, *, sector: str = Sector.ECOMMERCE, **extra) -> Operator:
    return Operator.objects.create(
        slug=slug, name=f"PT {slug.title()}", sector=sector, contact_email=f"security@{slug}.example", **extra
    )


def make_member(operator: Operator, role: str, email: str | None = None) -> User:
    user = User.objects.create_user(
        email or f"{role}@{operator.slug}.example", PASSWORD, full_name=role.title()
    )
    Membership.objects.create(user=user, operator=operator, role=role)
    return user


@pytest.fixture
def operator(db) -> Operator:
    return make_operator("acme")


@pytest.fixture
def other_operator(db) -> Operator:
    return make_operator("globex", sector=Sector.FINTECH_PAYMENT)


@pytest.fixture
def healthtech_operator(db) -> Operator:
    return make_operator("sehat", sector=Sector.HEALTHTECH)


@pytest.fixture
def op_admin(operator) -> User:
    return make_member(operator, Role.ADMIN)


@pytest.fixture
def reporter(operator) -> User:
    return make_member(operator, Role.REPORTER)


@pytest.fixture
def viewer(operator) -> User:
    return make_member(operator, Role.VIEWER)


@pytest.fixture
def outsider(other_operator) -> User:
    """An admin of another organisation: must never see `operator`'s data."""
    return make_member(other_operator, Role.ADMIN)


def _staff(email: str, group_name: str) -> User:
    from django.contrib.auth.models import Group

    from portal.accounts.staff import create_groups, sync_group_permissions

    create_groups()  # a flushed test database has lost the data migration's groups
    sync_group_permissions()
    user = User.objects.create_user(email, PASSWORD, is_staff=True, full_name=group_name)
    user.groups.add(Group.objects.get(name=group_name))
    return user


@pytest.fixture
def analyst(db) -> User:
    from portal.accounts.staff import ANALYST

    return _staff("analyst@bssn.example", ANALYST)


@pytest.fixture
def supervisor(db) -> User:
    from portal.accounts.staff import SUPERVISOR

    return _staff("supervisor@bssn.example", SUPERVISOR)


@pytest.fixture
def client_for(client):
    """Return a function that signs `user` in on a fresh test client."""
    from django.test import Client

    def _client(user: User) -> Client:
        c = Client()
        c.force_login(user)
        return c

    return _client


def totp_code(user: User) -> str:
    """Return the current code of the user's confirmed TOTP device."""
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.get(user=user, confirmed=True)
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def give_totp_device(user: User):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return TOTPDevice.objects.get_or_create(user=user, confirmed=True, defaults={"name": "test"})[0]


@pytest.fixture
def staff_client():
    """Return a function giving a test client signed in as `user` AND verified by TOTP.

    BSSN staff need a verified second factor for every admin page.
    """
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY

    def _client(user: User) -> Client:
        device = give_totp_device(user)
        c = Client()
        c.force_login(user)
        session = c.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
        return c

    return _client


@pytest.fixture(scope="session", autouse=True)
def _no_stray_database_sessions(django_db_setup, django_db_blocker):
    """End sessions still open on the PostgreSQL test database before it is dropped.

    A connection opened while the browser tests' live server runs outlives them, and
    dropping the database then warned "database is being accessed by other users".
    """
    yield
    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
