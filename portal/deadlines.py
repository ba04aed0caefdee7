"""What every deadline with reminders shares: claiming each notice once by its sent marker.

Incident obligations and stop-processing obligations both carry `due_at` and the sent
markers `reminder_sent_at` and `overdue_sent_at`; their querysets define `open()`.
A reminder or overdue notice is claimed by a conditional UPDATE of its marker, so a
late or doubled beat run never loses or doubles one.
"""

from datetime import datetime

from django.db import models


class DeadlineQuerySet(models.QuerySet):
    def open(self) -> "DeadlineQuerySet":
        raise NotImplementedError

    def claim_reminder(self, pk: int, now: datetime) -> bool:
        """Mark the "due soon" reminder of deadline `pk` sent; False if it was, or the time passed."""
        return bool(
            self.open()
            .filter(pk=pk, reminder_sent_at__isnull=True, due_at__gt=now)
            .update(reminder_sent_at=now)
        )

    def claim_overdue(self, pk: int, now: datetime) -> bool:
        """Mark the overdue notice of deadline `pk` sent; False if it was, or it is not yet due."""
        return bool(
            self.open()
            .filter(pk=pk, overdue_sent_at__isnull=True, due_at__lte=now)
            .update(overdue_sent_at=now)
        )
