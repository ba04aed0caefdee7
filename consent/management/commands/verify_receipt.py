import json

from django.core.management.base import BaseCommand, CommandError

from consent.receipts import receipt_problems
from portal.transparency import load_public_key, verification_keys


class Command(BaseCommand):
    help = (
        "Check a consent receipt's ledger proof and checkpoint signature. Uses no database: the keys come "
        "from the settings or from --keys (the published /.well-known/portal-checkpoint-keys.json)."
    )
    requires_system_checks: list = []
    requires_migrations_checks = False

    def add_arguments(self, parser):
        parser.add_argument("file", help="The receipt (JSON).")
        parser.add_argument("--keys", help="The published key set (JSON) instead of the configured keys.")

    def handle(self, *args, file, keys=None, **options):
        try:
            with open(file, encoding="utf-8-sig") as fh:
                document = json.load(fh)
            key_set = verification_keys() if keys is None else _read_keys(keys)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CommandError(f"Cannot read {exc}") from exc
        problems = receipt_problems(document, key_set)
        for problem in problems:
            self.stderr.write(f"INVALID: {problem}")
        if problems:
            raise CommandError("The receipt is invalid.")
        self.stdout.write(self.style.SUCCESS("The receipt is valid."))


def _read_keys(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        document = json.load(fh)
    return {k["key_id"]: load_public_key(k["public_key"]) for k in document["keys"]}
