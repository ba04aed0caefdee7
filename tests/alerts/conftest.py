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


@pytest.fixture
def receiver():
    from tests.alerts.receiver import Receiver

    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def hook(db, receiver):
    """A webhook channel pointing at the local receiver, routed every event, its secret known to it."""
    from datetime import timedelta

    from portal.alerts.models import Authority, Channel, RoutingRule

    authority = Authority.objects.create(code="test-receiver", name="Receiver Authority", language="en")
    channel = Channel(authority=authority, kind="webhook", url=receiver.url)
    secret = channel.rotate_secret(overlap=timedelta(0))
    channel.save()
    RoutingRule.objects.create(event_pattern="*", authority=authority)
    receiver.secrets = [secret]
    return channel
