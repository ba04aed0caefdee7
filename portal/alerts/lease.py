"""Leases on claimed outbox rows: the worker holding a row renews it; a dead worker's rows expire.

A claim sets `leased_until` to now + ALERTS_LEASE_SECONDS. While a send lasts longer
than a quarter of that, a heartbeat thread of the worker process renews the leases of
the rows the process holds (`held`). A killed or frozen worker stops renewing, and the
sweeper frees its rows once their lease has expired: seconds after the fault, instead
of after a fixed limit that had to outlast the slowest legitimate send.

The heartbeat has a database connection of its own (Django's are per thread), opened
only when a send has outlasted a beat, and closed after each renewal.
"""

import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

logger = logging.getLogger(__name__)


def expiry(now: datetime) -> datetime:
    """Return when a lease taken or renewed at `now` expires."""
    return now + timedelta(seconds=settings.ALERTS_LEASE_SECONDS)


class _Heartbeat:
    """The process's held rows, and the thread that renews their leases."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # ("delivery", claim token) or ("notice", id) -> when this process took it (monotonic).
        self.held: dict[tuple[str, object], float] = {}
        self.pid = 0

    def _ensure_thread(self) -> None:
        # A forked worker child starts its own thread (threads do not survive a fork).
        if self.pid != os.getpid():
            self.pid = os.getpid()
            self.held.clear()
            threading.Thread(target=self._run, name="alerts-lease-heartbeat", daemon=True).start()

    def add(self, keys: list[tuple[str, object]]) -> None:
        now = time.monotonic()
        with self.lock:
            self._ensure_thread()
            for key in keys:
                self.held[key] = now

    def remove(self, keys: list[tuple[str, object]]) -> None:
        with self.lock:
            for key in keys:
                self.held.pop(key, None)

    @staticmethod
    def interval() -> float:
        return max(0.2, settings.ALERTS_LEASE_SECONDS / 4)

    def _run(self) -> None:
        while True:
            time.sleep(self.interval())
            try:
                self.renew(older_than=self.interval())
            except Exception:  # a database error must not end the heartbeat; the next beat retries
                logger.warning("could not renew alert leases", exc_info=True)
                connection.close()

    def renew(self, *, older_than: float = 0.0) -> int:
        """Extend the lease of the rows this process has held for `older_than` s; return the count.

        Most sends take milliseconds and end long before their lease needs renewing; the
        heartbeat touches the database only for the slow ones.
        """
        from .models import Delivery, Notice

        cutoff = time.monotonic() - older_than
        with self.lock:
            keys = [key for key, since in self.held.items() if since <= cutoff]
        if not keys:
            return 0
        tokens = [value for kind, value in keys if kind == "delivery"]
        notice_ids = [value for kind, value in keys if kind == "notice"]
        until = expiry(timezone.now())
        renewed = 0
        try:
            if tokens:
                renewed += Delivery.objects.filter(claim_token__in=tokens, status="sending").update(
                    leased_until=until
                )
            if notice_ids:
                renewed += Notice.objects.filter(pk__in=notice_ids, status="sending").update(
                    leased_until=until
                )
        finally:
            if threading.current_thread().name == "alerts-lease-heartbeat":
                connection.close()  # held again in a few seconds at most; no idle connection meanwhile
        return renewed


_heartbeat = _Heartbeat()


@contextmanager
def held(*, tokens: Iterable[uuid.UUID] = (), notices: Iterable[int] = ()) -> Iterator[None]:
    """Keep renewing the leases of these claims (delivery claim tokens, notice ids) while inside."""
    keys = [("delivery", t) for t in tokens] + [("notice", n) for n in notices]
    _heartbeat.add(keys)
    try:
        yield
    finally:
        _heartbeat.remove(keys)


def renew_now() -> int:
    """Renew every lease this process holds, at once (what the heartbeat does for slow sends)."""
    return _heartbeat.renew()
