"""The contract the suspected-cases app relies on: has_current_consent()."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from consent import services
from consent.models import SHARE_IDENTITY_WITH_HEALTH_AUTHORITIES
from tests.consent.helpers import give, published_version

pytestmark = pytest.mark.django_db
HEALTH = SHARE_IDENTITY_WITH_HEALTH_AUTHORITIES


def _has(operator, subject="user-42", code=HEALTH, **kwargs) -> bool:
    return services.has_current_consent(
        operator=operator, subject_identifier=subject, purpose_code=code, **kwargs
    )


def test_the_purpose_code_constant_is_stable():
    assert HEALTH == "share-identity-health"


def test_it_is_false_without_any_event(operator):
    published_version(operator)
    assert _has(operator) is False


def test_it_is_true_after_consent_is_given(operator):
    give(operator, "user-42", HEALTH)
    assert _has(operator) is True
    # ...for that subject and purpose only.
    assert _has(operator, subject="user-43") is False
    assert _has(operator, code="marketing-email") is False


def test_it_is_false_after_a_withdrawal(operator):
    now = timezone.now()
    give(operator, "user-42", HEALTH, event_at=now - timedelta(days=2))
    give(operator, "user-42", HEALTH, state="withdrawn", event_at=now - timedelta(hours=1))
    assert _has(operator) is False
    # Asked about a time before the withdrawal, the answer is the state then.
    assert _has(operator, at=now - timedelta(days=1)) is True


def test_it_is_false_after_a_refusal_or_expiry_event(operator):
    now = timezone.now()
    give(operator, "user-42", HEALTH, event_at=now - timedelta(days=3))
    give(operator, "user-42", HEALTH, state="refused", event_at=now - timedelta(days=2))
    assert _has(operator) is False
    give(operator, "user-42", HEALTH, event_at=now - timedelta(days=1))
    assert _has(operator) is True
    give(operator, "user-42", HEALTH, state="expired", event_at=now - timedelta(minutes=1))
    assert _has(operator) is False


def test_it_is_false_once_the_consent_expired(operator):
    now = timezone.now()
    give(operator, "user-42", HEALTH, event_at=now - timedelta(days=10), expires_at=now - timedelta(days=1))
    assert _has(operator) is False
    assert _has(operator, at=now - timedelta(days=5)) is True


def test_it_ignores_another_operators_ledger(operator, other_operator):
    give(other_operator, "user-42", HEALTH)
    published_version(operator)
    assert _has(operator) is False


def test_it_finds_the_subject_without_decrypting(operator):
    give(operator, "user-42", HEALTH)
    with CaptureQueriesContext(connection) as ctx:
        assert _has(operator, subject="  user-42 ") is True
    sql = " ".join(q["sql"] for q in ctx.captured_queries)
    assert "subject_identifier" not in sql
    assert "subject_index" in sql
