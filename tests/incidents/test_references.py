import threading

import pytest
from django.db import IntegrityError, connection, transaction

from incidents import services
from incidents.models import Incident, ReferenceCounter
from tests.incidents.helpers import content, file_incident

pytestmark = pytest.mark.django_db


def test_references_count_up_per_year_in_a_readable_form(operator, reporter):
    first = file_incident(operator, reporter, submit=False)
    second = file_incident(operator, reporter, submit=False)
    year = first.created_at.year
    assert first.reference == f"INS-{year}-000001"
    assert second.reference == f"INS-{year}-000002"


def test_a_rolled_back_filing_does_not_hand_its_number_out_twice(operator, reporter):
    file_incident(operator, reporter, submit=False)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.create_incident(operator=operator, actor=reporter, data=content())
        raise RuntimeError("the request failed after numbering")
    third = file_incident(operator, reporter, submit=False)
    # The counter rolled back with the failed filing: numbers stay dense and unique.
    assert third.reference.endswith("-000002")
    assert Incident.objects.filter(reference=third.reference).count() == 1


def test_the_database_refuses_a_duplicate_reference(operator, reporter):
    incident = file_incident(operator, reporter, submit=False)
    clone = Incident(
        operator=operator, created_by=reporter, reference=incident.reference, title="x", category="other"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        clone.save()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_filings_at_once_get_different_numbers(operator, reporter):
    """Two threads file at the same instant: the year's head row lock serialises them."""
    barrier = threading.Barrier(2)
    references, errors = [], []

    def file_one():
        try:
            barrier.wait(timeout=10)
            for _ in range(5):
                incident = services.create_incident(operator=operator, actor=reporter, data=content())
                references.append(incident.reference)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=file_one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert len(references) == 10 and len(set(references)) == 10
    assert ReferenceCounter.objects.get().last_number == 10
