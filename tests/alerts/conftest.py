import pytest

from portal.alerts.seed import seed_authorities


@pytest.fixture
def seeded(db):
    """The seeded authorities and rules (a transactional test elsewhere may have flushed them)."""
    seed_authorities()


@pytest.fixture
def webhook_authority(db):
    from portal.alerts.models import Authority, Channel

    authority = Authority.objects.create(code="hook-authority", name="Hook Authority", language="en")
    channel = Channel(authority=authority, kind="webhook", url="http://127.0.0.1:9/hook")
    channel.rotate_secret(overlap=__import__("datetime").timedelta(0))
    channel.save()
    return channel
