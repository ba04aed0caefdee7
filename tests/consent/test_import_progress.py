"""Web uploads return at once; a worker checks and imports them while a page shows progress."""

import io
import re

import pytest
from django.test import TestCase
from django.urls import reverse

import consent.importer
from consent.models import ConsentEvent, ConsentImport, ImportStatus, LedgerHead
from tests.consent.helpers import published_version, web_confirm, web_upload
from tests.consent.test_import import _csv, _rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def version(operator):
    return published_version(operator)


@pytest.fixture
def staging(settings, tmp_path):
    settings.PRIVATE_STORAGE_ROOT = tmp_path
    return tmp_path


def _post_upload(client, operator, data: bytes):
    upload = io.BytesIO(data)
    upload.name = "consents.csv"
    return client.post(reverse("consent:import", args=[operator.slug]), {"file": upload})


def test_the_upload_returns_before_the_file_is_checked_and_the_page_shows_progress(
    client_for, reporter, operator, version, staging
):
    c = client_for(reporter)
    with TestCase.captureOnCommitCallbacks(execute=False) as queued:
        response = _post_upload(c, operator, _csv(_rows(300)))
    assert response.status_code == 302 and len(queued) == 1  # the check is queued, not run
    imp = ConsentImport.objects.get()
    assert imp.status == ImportStatus.VALIDATING and imp.rows_expected == 300
    assert list(staging.rglob("*.fernet"))  # stored, encrypted

    page = c.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200 and "<progress" in html
    assert "of about 300 rows" in html or "dari sekitar 300 baris" in html
    assert reverse("consent:import_status", args=[operator.slug, imp.pk]) in html
    assert "consent/import_progress.js" in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)  # no inline script (strict CSP)
    assert "no-store" in page["Cache-Control"]

    status = c.get(reverse("consent:import_status", args=[operator.slug, imp.pk])).json()
    assert status == {"status": "validating", "in_progress": True, "rows_done": 0, "rows_expected": 300}

    queued[0]()  # the worker picks the task up
    imp.refresh_from_db()
    assert (imp.status, imp.row_count, imp.rows_done) == (ImportStatus.PREVIEWED, 300, 300)
    status = c.get(reverse("consent:import_status", args=[operator.slug, imp.pk])).json()
    assert status["status"] == "previewed" and status["in_progress"] is False
    assert not ConsentEvent.objects.exists()


def test_confirming_queues_the_import_and_shows_it_in_progress(
    client_for, reporter, operator, version, staging
):
    c = client_for(reporter)
    imp, _ = web_upload(c, operator, _csv(_rows(50)))
    with TestCase.captureOnCommitCallbacks(execute=False) as queued:
        response = c.post(reverse("consent:import_confirm", args=[operator.slug, imp.pk]))
    assert response.status_code == 302 and len(queued) == 1
    imp.refresh_from_db()
    assert imp.status == ImportStatus.IMPORTING and not ConsentEvent.objects.exists()
    html = c.get(response["Location"]).content.decode()
    assert "<progress" in html and ("Importing the file" in html or "Mengimpor berkas" in html)

    queued[0]()
    imp.refresh_from_db()
    assert (imp.status, imp.imported_count) == (ImportStatus.COMMITTED, 50)
    assert ConsentEvent.objects.filter(operator=operator).count() == 50


def test_a_failed_check_is_shown_on_the_progress_page_and_nothing_is_saved(
    client_for, reporter, operator, version, staging
):
    rows = _rows(200, bad_row=150)
    imp, page = web_upload(client_for(reporter), operator, _csv(rows))
    html = page.content.decode()
    assert imp.status == ImportStatus.FAILED and imp.error_count == 1
    assert "<progress" not in html and "152" in html and "event_time" in html  # line 152, the column
    assert not list(staging.rglob("*.fernet"))  # the staged file is gone
    assert not ConsentEvent.objects.exists() and not LedgerHead.objects.filter(last_seq__gt=0).exists()
    confirm = client_for(reporter).post(reverse("consent:import_confirm", args=[operator.slug, imp.pk]))
    assert (
        confirm.status_code == 302 and not ConsentEvent.objects.exists()
    )  # a refused file cannot be confirmed


def test_an_import_that_breaks_midway_leaves_nothing_half_saved(
    client_for, reporter, operator, version, staging, monkeypatch, import_tasks_in_process
):
    c = client_for(reporter)
    imp, _ = web_upload(c, operator, _csv(_rows(400)))
    monkeypatch.setattr(consent.importer, "CHUNK_BYTES", 2048)  # several chunks
    calls = []
    write_rows = consent.importer._Writer.write_rows
    write_copy = consent.importer._Writer.write_copy_lines

    def fail_on_third_chunk(original):
        def write(self, rows):
            calls.append(len(rows))
            if len(calls) == 3:
                raise RuntimeError("the database went away")
            return original(self, rows)

        return write

    monkeypatch.setattr(consent.importer._Writer, "write_rows", fail_on_third_chunk(write_rows))
    monkeypatch.setattr(consent.importer._Writer, "write_copy_lines", fail_on_third_chunk(write_copy))
    imp, _ = web_confirm(c, operator, imp)
    failed = import_tasks_in_process.pop()
    assert failed.failed() and isinstance(failed.result, RuntimeError)  # the worker logs it
    assert imp.status == ImportStatus.FAILED and imp.errors
    assert len(calls) == 3 and not ConsentEvent.objects.exists()
    assert not LedgerHead.objects.filter(last_seq__gt=0).exists()
    html = c.get(reverse("consent:import_detail", args=[operator.slug, imp.pk])).content.decode()
    assert "nothing was imported" in html.lower() or "tidak ada yang diimpor" in html.lower()


def test_another_operators_import_pages_are_404(client_for, reporter, outsider, operator, version, staging):
    imp, _ = web_upload(client_for(reporter), operator, _csv(_rows(5)))
    other = client_for(outsider)
    slug = outsider.memberships.get().operator.slug
    for name in ("consent:import_detail", "consent:import_status"):
        assert other.get(reverse(name, args=[slug, imp.pk])).status_code == 404
    assert other.post(reverse("consent:import_confirm", args=[slug, imp.pk])).status_code == 404
    imp.refresh_from_db()
    assert imp.status == ImportStatus.PREVIEWED


def test_anonymous_and_viewers_cannot_see_import_status(
    client, client_for, viewer, reporter, operator, version, staging
):
    imp, _ = web_upload(client_for(reporter), operator, _csv(_rows(5)))
    url = reverse("consent:import_status", args=[operator.slug, imp.pk])
    assert client.get(url).status_code == 302
    assert client_for(viewer).get(url).status_code == 403
