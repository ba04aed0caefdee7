from django.core.management.base import BaseCommand, CommandError

from portal.audit.models import AuditEvent
from portal.audit.services import verify_chain


class Command(BaseCommand):
    help = "Verify the audit log's hash chain and name the first broken event."

    def add_arguments(self, parser):
        parser.add_argument("--stream", help="Verify only this stream.")

    def handle(self, *args, stream=None, **options):
        breaks = list(verify_chain(stream=stream))
        for brk in breaks:
            self.stderr.write(
                f"BROKEN stream={brk.stream} seq={brk.seq} event_id={brk.event_id}: {brk.reason}"
            )
        if breaks:
            raise CommandError(f"{len(breaks)} broken chain(s).")
        count = AuditEvent.objects.filter(stream=stream).count() if stream else AuditEvent.objects.count()
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {count} events verified."))
