import os

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from consent import imports
from portal.accounts.models import Operator, User

# Below this size starting worker processes costs more than it saves.
PARALLEL_FROM_BYTES = 8 * 1024 * 1024


def _count_rows(path: str) -> int:
    """Count data rows cheaply (newlines minus the header) for the progress bar's total."""
    lines = 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            lines += chunk.count(b"\n")
    return max(lines - 1, 0)


class Command(BaseCommand):
    help = "Import consent events from a CSV file, all or nothing; a file imported before is recognised."

    def add_arguments(self, parser):
        parser.add_argument(
            "file",
            help="CSV with columns subject_id, purpose, state, event_time, method, "
            "policy_version [, actor, expires_at, evidence].",
        )
        parser.add_argument("--operator", required=True, help="The operator's short name (slug).")
        parser.add_argument("--actor", help="E-mail of the user recorded as importing (optional).")
        parser.add_argument("--no-progress", action="store_true", help="Do not show a progress bar.")
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="Processes that encrypt and index rows on PostgreSQL (default: one per CPU for files "
            "over 8 MB, none for smaller ones; 0: none).",
        )

    def handle(self, *args, file, operator, actor=None, no_progress=False, workers=None, **options):
        org = Operator.objects.filter(slug=operator).first()
        if org is None:
            raise CommandError(f"No operator with short name {operator!r}.")
        user = None
        if actor:
            user = User.objects.filter(email__iexact=actor).first()
            if user is None:
                raise CommandError(f"No user {actor!r}.")
        if not os.path.isfile(file):
            raise CommandError(f"No such file: {file}")
        if workers is None:
            workers = (os.cpu_count() or 1) if os.path.getsize(file) > PARALLEL_FROM_BYTES else 0
        bar = tqdm(
            total=None if no_progress else _count_rows(file),
            unit="rows",
            disable=no_progress,
            file=self.stderr._out,
            mininterval=0.5,
        )
        try:
            consent_import, result = imports.import_file(
                operator=org,
                actor=user,
                path=file,
                filename=os.path.basename(file),
                progress=bar.update,
                workers=max(workers, 0),
            )
        except ValueError as exc:  # ImportFileError and friends: the file as a whole is unreadable
            raise CommandError(str(exc)) from exc
        finally:
            bar.close()
        if result is None:
            self.stdout.write(
                self.style.WARNING(
                    f"This file was already imported on {consent_import.committed_at:%Y-%m-%d %H:%M} UTC "
                    f"({consent_import.imported_count} events); nothing was imported again."
                )
            )
            return
        if not result.committed:
            for error in result.errors[:50]:
                self.stderr.write(f"row {error.row}, column {error.column or '-'}: {error.reason}")
            if result.error_count > 50:
                self.stderr.write(f"... and {result.error_count - 50} more error(s).")
            raise CommandError(f"{result.error_count} error(s) in {result.rows} rows: nothing was imported.")
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {result.imported} events from {result.rows} rows "
                f"({result.skipped} already recorded, skipped)."
            )
        )
