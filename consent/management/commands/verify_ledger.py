from django.core.management.base import BaseCommand, CommandError

from consent.models import ConsentEvent
from consent.services import verify_ledger
from portal.accounts.models import Operator


class Command(BaseCommand):
    help = (
        "Verify every operator's consent ledger (also one whose events are all gone): the hash chain, "
        "the head and the latest witnessed checkpoint; name the first bad event or how many are missing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--operator", help="Verify only this operator's chain (short name).")
        parser.add_argument(
            "--deep",
            action="store_true",
            help="Also decrypt every identifier and check it against its blind index (needs the keys).",
        )

    def handle(self, *args, operator=None, deep=False, **options):
        org = None
        if operator:
            org = Operator.objects.defer("contact_phone").filter(slug=operator).first()
            if org is None:
                raise CommandError(f"No operator with short name {operator!r}.")
        slugs = dict(Operator.objects.values_list("pk", "slug"))
        breaks = list(verify_ledger(operator=org, deep=deep))
        for brk in breaks:
            self.stderr.write(
                f"BROKEN operator={slugs.get(brk.operator_id, brk.operator_id)} seq={brk.seq or '-'} "
                f"record_id={brk.record_id or '-'}: {brk.reason}"
            )
        if breaks:
            raise CommandError(f"{len({b.operator_id for b in breaks})} broken chain(s).")
        events = ConsentEvent.objects.filter(operator=org) if org else ConsentEvent.objects.all()
        self.stdout.write(self.style.SUCCESS(f"Consent ledger intact: {events.count()} events verified."))
