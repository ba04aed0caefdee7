import os
import secrets

from django.conf import settings
from django.core.management.base import BaseCommand

from incidents.summaries import refresh as refresh_dashboard
from portal.accounts.demo import DEMO_OPERATORS, DEMO_STAFF, demo_email, demo_totp_secret, seed_demo
from portal.demo_activity import seed_demo_activity


class Command(BaseCommand):
    help = (
        "Create the demo organisations, accounts and activity (idempotent). The password comes from "
        "DEMO_PASSWORD, or is generated once, kept in var/demo-password and printed."
    )

    def handle(self, *args, **options):
        password = os.environ.get("DEMO_PASSWORD")
        source = "DEMO_PASSWORD"
        if not password:
            path = settings.VAR_DIR / "demo-password"
            if path.exists():
                password = path.read_text().strip()
            else:
                password = secrets.token_urlsafe(12)
                path.write_text(password + "\n")
                path.chmod(0o600)
            source = str(path.relative_to(settings.BASE_DIR))
        created = seed_demo(password=password)
        activity = seed_demo_activity()
        refresh_dashboard()  # as beat would: the dashboard's summaries include the demo
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready ({created['operators']} organisations and "
                f"{created['users']} accounts created; "
                f"{activity['incidents']} incidents, {activity['policies']} privacy policies and "
                f"{activity['flags']} suspected-case flags added)."
            )
        )
        self.stdout.write(f"Demo password for every account below (from {source}): {password}")
        for slug, name, *_rest in DEMO_OPERATORS:
            accounts = ", ".join(demo_email(role, slug) for role in ("admin", "reporter", "viewer"))
            self.stdout.write(f"  {name}: {accounts}")
        for email, _name, group in DEMO_STAFF:
            self.stdout.write(f"  {group} (admin at /admin/): {email}  TOTP key: {demo_totp_secret(email)}")
        self.stdout.write(
            "Staff sign in with a second factor: add the TOTP key to an authenticator app, or run "
            "`python manage.py demo_totp_code EMAIL` for the current code."
        )
