from django.core.management.base import BaseCommand, CommandError

from portal.audit.checkpoints import verify_audit_log
from portal.audit.models import AuditEvent


class Command(BaseCommand):
    help = (
        "Verify the audit log: its hash chain, its head and the latest witnessed checkpoint; "
        "name the first bad event or how many are missing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--stream", help="Verify only this stream.")

    def handle(self, *args, stream=None, **options):
        breaks = list(verify_audit_log(stream=stream))
        for brk in breaks:
            where = f"seq={brk.seq or '-'} event_id={brk.event_id or '-'}"
            self.stderr.write(f"BROKEN stream={brk.stream} {where}: {brk.reason}")
        if breaks:
            raise CommandError(f"{len({b.stream for b in breaks})} broken chain(s).")
        count = AuditEvent.objects.filter(stream=stream).count() if stream else AuditEvent.objects.count()
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {count} events verified."))
