"""Imports across a key rotation, and files saved with another separator."""

import io

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse

from consent import services
from consent.models import ConsentEvent, ImportStatus
from portal.keyrotation import reset_field_caches
from tests.consent.helpers import published_version, web_confirm, web_upload
from tests.consent.test_import import HEADER, _csv, _rows

pytestmark = pytest.mark.django_db

OLD_KEY, NEW_KEY = settings.FERNET_KEYS[0], Fernet.generate_key().decode()
OLD_INDEX_KEY, NEW_INDEX_KEY = settings.BLIND_INDEX_KEY, "rotated-blind-index-key"


@pytest.fixture
def keys(settings, tmp_path):
    """Switch the configured keys inside a test, forgetting keys cached on fields."""
    settings.PRIVATE_STORAGE_ROOT = tmp_path
    active = []

    def use(fernet_keys: list[str], index_key: str) -> None:
        cm = override_settings(FERNET_KEYS=fernet_keys, BLIND_INDEX_KEY=index_key)
        cm.enable()
        active.append(cm)
        reset_field_caches()

    yield use
    for cm in reversed(active):
        cm.disable()
    reset_field_caches()


def _rotate(keys, capsys) -> None:
    """Follow the runbook: add the new keys first, run rotate_keys, then drop the old key."""
    keys([NEW_KEY, OLD_KEY], NEW_INDEX_KEY)
    call_command("rotate_keys", "--no-progress")
    assert "encrypted files:" in capsys.readouterr().out
    keys([NEW_KEY], NEW_INDEX_KEY)


def test_a_reimport_after_rotate_keys_is_recognised_not_doubled(client_for, reporter, operator, keys, capsys):
    keys([OLD_KEY], OLD_INDEX_KEY)
    published_version(operator)
    c = client_for(reporter)
    rows = _rows(60)
    imp, _ = web_upload(c, operator, _csv(rows))
    assert web_confirm(c, operator, imp)[0].imported_count == 60

    _rotate(keys, capsys)

    # The very same file: recognised as a whole.
    again, response = web_upload(c, operator, _csv(rows), "consents-again.csv")
    assert again.status == ImportStatus.DUPLICATE
    # The same rows in another file, with ten new ones: only the new ones are imported.
    more = rows[:30] + _rows(70)[60:] + rows[30:]
    mixed, _ = web_upload(c, operator, _csv(more), "consents-more.csv")
    assert mixed.status == ImportStatus.PREVIEWED and mixed.skipped_count == 60
    mixed, _ = web_confirm(c, operator, mixed)
    assert (mixed.status, mixed.imported_count, mixed.skipped_count) == (ImportStatus.COMMITTED, 10, 60)
    assert ConsentEvent.objects.filter(operator=operator).count() == 70
    assert list(services.verify_ledger(operator=operator, deep=True)) == []


def test_an_import_staged_before_rotate_keys_still_opens_and_confirms(
    client_for, reporter, operator, keys, capsys
):
    keys([OLD_KEY], OLD_INDEX_KEY)
    published_version(operator)
    c = client_for(reporter)
    imp, _ = web_upload(c, operator, _csv(_rows(25)))
    assert imp.status == ImportStatus.PREVIEWED

    _rotate(keys, capsys)

    page = c.get(reverse("consent:import_detail", args=[operator.slug, imp.pk]))
    assert page.status_code == 200 and "cu••••••00" in page.content.decode()  # the masked preview
    imp, _ = web_confirm(c, operator, imp)
    assert (imp.status, imp.imported_count) == (ImportStatus.COMMITTED, 25)
    assert services.has_current_consent(
        operator=operator, subject_identifier="cust-00000", purpose_code="marketing-email"
    )


@pytest.mark.parametrize("separator", [";", "\t"])
def test_a_file_separated_by_semicolons_or_tabs_is_read(
    client_for, reporter, operator, separator, settings, tmp_path
):
    settings.PRIVATE_STORAGE_ROOT = tmp_path
    published_version(operator)
    c = client_for(reporter)
    data = _csv(_rows(12)).decode().replace(",", separator).encode()
    imp, response = web_upload(c, operator, data, "excel-id.csv")
    assert imp.status == ImportStatus.PREVIEWED and imp.row_count == 12, imp.errors
    assert "cu••••••00" in response.content.decode()
    assert web_confirm(c, operator, imp)[0].imported_count == 12


def test_a_file_with_another_separator_is_refused_naming_it(client_for, reporter, operator):
    published_version(operator)
    upload = io.BytesIO(_csv(_rows(3)).decode().replace(",", "|").encode())
    upload.name = "pipes.csv"
    response = client_for(reporter).post(reverse("consent:import", args=[operator.slug]), {"file": upload})
    page = response.content.decode()
    assert "“|”" in page and ("semicolon" in page or "titik koma" in page)
    assert not ConsentEvent.objects.exists()


def test_header_constant_matches_the_importer():
    from consent.importer import OPTIONAL_COLUMNS, REQUIRED_COLUMNS

    assert tuple(HEADER) == REQUIRED_COLUMNS + OPTIONAL_COLUMNS
