"""Bulk CSV import: all or nothing, row-level errors, re-imports recognised, never doubled."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from consent import services
from consent.models import ConsentEvent, ConsentImport, ImportStatus
from tests.consent.helpers import PURPOSES, published_version, web_confirm, web_upload

pytestmark = pytest.mark.django_db
HEADER = [
    "subject_id",
    "purpose",
    "state",
    "event_time",
    "method",
    "policy_version",
    "actor",
    "expires_at",
    "evidence",
]


def _rows(n: int, *, bad_row: int | None = None) -> list[list[str]]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(n):
        state = "withdrawn" if i % 10 == 9 else "given"
        rows.append(
            [
                f"cust-{i % 2500:05d}",
                PURPOSES[i % 2],
                state,
                (start + timedelta(minutes=i)).isoformat(),
                "web_form",
                "1",
                "subject",
                "",
                f"banner-{i % 7}",
            ]
        )
    if bad_row is not None:
        rows[bad_row][3] = "yesterday-ish"
    return rows


def _csv(rows, header=HEADER) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


@pytest.fixture
def version(operator):
    return published_version(operator)


def test_one_bad_row_among_10000_imports_nothing_and_names_that_row(operator, version, tmp_path, capsys):
    path = tmp_path / "consents.csv"
    path.write_bytes(_csv(_rows(10_000, bad_row=6_789)))
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_consents", str(path), "--operator", operator.slug, "--no-progress")
    assert ConsentEvent.objects.count() == 0
    # The file's line number: the header is line 1, the 6,790th data row is line 6,791.
    assert "row 6791, column event_time: " in capsys.readouterr().err
    failed = ConsentImport.objects.get()
    assert failed.status == ImportStatus.FAILED and failed.errors[0]["row"] == 6791

    # The same file, fixed, imports everything and the chain verifies.
    path.write_bytes(_csv(_rows(10_000)))
    call_command("import_consents", str(path), "--operator", operator.slug, "--no-progress")
    assert ConsentEvent.objects.filter(operator=operator).count() == 10_000
    assert list(services.verify_ledger(operator=operator)) == []
    withdrawn = ConsentEvent.objects.filter(state="withdrawn").defer("subject_identifier").first()
    assert withdrawn.stop_processing_by == withdrawn.event_at + timedelta(hours=72)
    assert services.has_current_consent(
        operator=operator, subject_identifier="cust-00000", purpose_code=PURPOSES[0]
    )

    # Importing it again is recognised and does not double anything.
    call_command("import_consents", str(path), "--operator", operator.slug, "--no-progress")
    assert "already imported" in capsys.readouterr().out
    assert ConsentEvent.objects.count() == 10_000


def test_rows_already_in_the_ledger_are_skipped_in_another_file(operator, version, tmp_path, capsys):
    rows = _rows(300)
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_bytes(_csv(rows[:200]))
    # Overlaps the first file, in another order, and repeats one row within itself.
    second.write_bytes(_csv(list(reversed(rows[100:])) + [rows[250]]))
    call_command("import_consents", str(first), "--operator", operator.slug, "--no-progress")
    call_command("import_consents", str(second), "--operator", operator.slug, "--no-progress")
    assert "Imported 100 events from 201 rows (101 already recorded, skipped)" in capsys.readouterr().out
    assert ConsentEvent.objects.count() == 300
    assert list(services.verify_ledger(operator=operator)) == []


def test_every_bad_row_is_reported_with_row_column_and_reason(client_for, reporter, operator, version):
    rows = _rows(5)
    rows[0][0] = ""
    rows[1][1] = "not-a-purpose"
    rows[2][2] = "maybe"
    rows[3][4] = "carrier-pigeon"
    rows[4][5] = "9"
    result, page = web_upload(client_for(reporter), operator, _csv(rows), "bad.csv")
    assert result.status == ImportStatus.FAILED
    assert [(e["row"], e["column"]) for e in result.errors] == [
        (2, "subject_id"),
        (3, "purpose"),
        (4, "state"),
        (5, "method"),
        (6, "policy_version"),
    ]
    assert "carrier-pigeon" in page.content.decode()  # the reasons are on the page
    assert ConsentEvent.objects.count() == 0


def test_a_file_without_the_required_columns_is_refused_clearly(client_for, reporter, operator, version):
    upload = io.BytesIO(b"name,email\nx,y\n")
    upload.name = "wrong.csv"
    response = client_for(reporter).post(reverse("consent:import", args=[operator.slug]), {"file": upload})
    page = response.content.decode()
    assert response.status_code == 200
    assert "subject_id" in page and ("Missing column" in page or "Kolom" in page)
    assert not ConsentEvent.objects.exists()


def test_a_file_that_is_not_utf8_is_refused_without_a_500(client_for, reporter, operator, version):
    data = _csv(_rows(3)).replace(b"cust", "cüst".encode("latin-1"))
    imp, page = web_upload(client_for(reporter), operator, data, "latin1.csv")
    assert page.status_code == 200
    assert imp.status == ImportStatus.FAILED and imp.errors[0]["row"] == 2
    assert not ConsentEvent.objects.exists()


def test_the_web_import_previews_then_commits_once(client_for, reporter, operator, version):
    c = client_for(reporter)
    imp, response = web_upload(c, operator, _csv(_rows(40)))
    page = response.content.decode()
    assert response.status_code == 200 and not ConsentEvent.objects.exists()
    assert "cust-00000" not in page and "cu••••••00" in page  # the preview masks identifiers
    assert imp.status == ImportStatus.PREVIEWED and imp.row_count == 40
    imp, _ = web_confirm(c, operator, imp)
    imp, page = web_confirm(c, operator, imp)  # a double submit changes nothing
    assert imp.status == ImportStatus.COMMITTED and imp.imported_count == 40
    assert "not waiting for confirmation" in page.content.decode() or "tidak" in page.content.decode()
    assert ConsentEvent.objects.count() == 40
    # The same file uploaded again is recognised.
    again, response = web_upload(c, operator, _csv(_rows(40)), "consents-again.csv")
    assert again.status == ImportStatus.DUPLICATE
    assert "already imported" in response.content.decode() or "sudah diimpor" in response.content.decode()
    assert ConsentEvent.objects.count() == 40


def test_the_staged_upload_is_encrypted_at_rest(client_for, reporter, operator, version, settings, tmp_path):
    settings.PRIVATE_STORAGE_ROOT = tmp_path
    c = client_for(reporter)
    imp, _ = web_upload(c, operator, _csv(_rows(3)))
    staged = next(tmp_path.rglob("*.fernet")).read_bytes()
    assert b"cust-" not in staged
    web_confirm(c, operator, imp)
    assert not list(tmp_path.rglob("*.fernet"))


def test_viewers_cannot_import(client_for, viewer, operator, version):
    assert client_for(viewer).get(reverse("consent:import", args=[operator.slug])).status_code == 403


def test_naive_times_are_read_in_the_operators_time_zone(client_for, reporter, operator, version):
    rows = _rows(1)
    rows[0][3] = "2026-01-05T09:00:00"
    c = client_for(reporter)
    imp, _ = web_upload(c, operator, _csv(rows))
    web_confirm(c, operator, imp)
    event = ConsentEvent.objects.defer("subject_identifier").get()
    assert event.event_at == datetime(2026, 1, 5, 2, 0, tzinfo=UTC)  # WIB is UTC+7


def test_the_command_shows_a_progress_bar(operator, version, tmp_path, capsys):
    path = tmp_path / "c.csv"
    path.write_bytes(_csv(_rows(50)))
    call_command("import_consents", str(path), "--operator", operator.slug)
    captured = capsys.readouterr()
    assert "Imported 50 events" in captured.out
    assert "50/50" in captured.err and "rows" in captured.err


def test_the_command_refuses_an_unknown_operator(tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes(_csv([]))
    with pytest.raises(CommandError, match="No operator"):
        call_command("import_consents", str(path), "--operator", "nobody")


@pytest.mark.postgres
def test_worker_processes_import_the_same_chain_as_one_process(
    operator, version, tmp_path, capsys, monkeypatch
):
    import consent.importer

    # Small chunks, so that three workers each get several.
    monkeypatch.setattr(consent.importer, "CHUNK_BYTES", 4096)
    rows = _rows(2_000)
    for i in (3, 1_100, 1_777):  # records spanning lines, wherever the chunks are cut
        rows[i][8] = f'a "quoted"\nmulti-line\r\nevidence {i}'
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_bytes(_csv(rows[:1_200]))
    # Overlaps the first file and repeats a row within itself: both are recognised.
    second.write_bytes(_csv(rows[1_000:] + [rows[1_500]]))
    for path in (first, second):
        call_command(
            "import_consents", str(path), "--operator", operator.slug, "--no-progress", "--workers", "3"
        )
    assert "Imported 800 events from 1001 rows (201 already recorded, skipped)" in capsys.readouterr().out
    assert ConsentEvent.objects.filter(operator=operator).count() == 2_000
    assert list(services.verify_ledger(operator=operator, deep=True)) == []
    assert services.has_current_consent(
        operator=operator, subject_identifier="cust-01999", purpose_code=PURPOSES[1]
    ) == (rows[1_999][2] == "given")


@pytest.mark.postgres
def test_worker_processes_report_a_bad_row_by_its_line_and_import_nothing(
    operator, version, tmp_path, capsys, monkeypatch
):
    import consent.importer

    monkeypatch.setattr(consent.importer, "CHUNK_BYTES", 4096)
    path = tmp_path / "c.csv"
    path.write_bytes(_csv(_rows(1_500, bad_row=1_234)))
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command(
            "import_consents", str(path), "--operator", operator.slug, "--no-progress", "--workers", "2"
        )
    assert "row 1236, column event_time: " in capsys.readouterr().err
    assert not ConsentEvent.objects.exists()
