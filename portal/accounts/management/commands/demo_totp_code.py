from django.core.management.base import BaseCommand, CommandError

from portal.accounts.demo import demo_totp_code


class Command(BaseCommand):
    help = "Print the current two-factor code of a demo staff account (.example addresses only)."

    def add_arguments(self, parser):
        parser.add_argument("email")

    def handle(self, *args, email, **options):
        try:
            self.stdout.write(demo_totp_code(email))
        except Exception as exc:  # unknown account or not a demo account
            raise CommandError(f"No demo two-factor device for {email}: {exc}") from exc
