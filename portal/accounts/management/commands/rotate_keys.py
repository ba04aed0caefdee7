from django.core.management.base import BaseCommand
from tqdm import tqdm

from portal.audit.services import record
from portal.keyrotation import rotate, rotate_files, targets


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted column with the first key in FERNET_KEYS and recompute "
        "blind indexes under BLIND_INDEX_KEY, in batches; resumable. Runbook: docs/operations.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument("--no-progress", action="store_true", help="No progress bar (logs, CI).")

    def handle(self, *args, batch_size, no_progress, **options):
        total = sum(t.model._base_manager.count() for t in targets())
        bar = tqdm(total=total, unit="row", disable=no_progress, file=self.stderr)
        counts = {}
        for target, done in rotate(batch_size=batch_size, progress=lambda _t, n: bar.update(n)):
            counts[target.label] = done
        bar.close()
        files, unreadable = rotate_files()
        rewritten = sum(counts.values())
        record(
            action="keys.rotate",
            changes={"rows": rewritten, "models": counts, "files": files, "files_unreadable": unreadable},
        )
        for label, done in counts.items():
            self.stdout.write(f"  {label}: {done} rows")
        self.stdout.write(f"  encrypted files: {files}")
        if unreadable:
            self.stdout.write(
                self.style.WARNING(f"  {unreadable} encrypted file(s) no listed key opens, left as they are.")
            )
        self.stdout.write(self.style.SUCCESS(f"Rotated {rewritten} rows in {len(counts)} models."))
