"""Fault suite: the alert pipeline under the faults it must survive, one table of what arrived.

    .venv/bin/python bench/fault_suite.py [--alerts 20] [--only broker-frozen,receiver-410]

Runs each scenario against a real Celery worker (prefork x4, every queue, embedded beat,
the production defaults for leases, sweeper and timeouts; only the retry backoff is
shortened so that a scenario takes seconds), a private redis-server the suite kills and
freezes, and a local receiver that verifies every signature with the reference
`standardwebhooks` library. Every alert is routed to the receiver's webhook and to an
e-mail channel; the broker scenarios also queue an e-mail to people (a notice).

Per scenario it prints: alerts sent, received once (distinct webhook ids accepted),
duplicates (extra accepted copies; delivery is at least once), lost (never accepted), bad
signatures, and the time to drain: from the end of the fault until every webhook,
alert e-mail and notice of the scenario was delivered. Each scenario is bounded
(--drain-timeout, default 60 s). Needs PostgreSQL (DATABASE_URL; the suite uses a fresh
database `<name>_faults`) and `redis-server` on the PATH; traffic goes to 127.0.0.1 only.
"""

import argparse
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings_test")


def _faults_database_url() -> str:
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        raise SystemExit("fault_suite: needs PostgreSQL (DATABASE_URL=postgres://...)")
    parsed = urlparse(base)
    return parsed._replace(path=parsed.path.rstrip("/") + "_faults").geturl()


if __name__ == "__main__":
    os.environ["DATABASE_URL"] = _faults_database_url()
    os.environ["CELERY_BROKER_URL"] = "memory://"  # replaced by the private redis-server below

import django  # noqa: E402

django.setup()

# The worker's settings: production defaults except a short retry backoff.
WORKER_ENV = {
    "ALERTS_BACKOFF_BASE": "1",
    "ALERTS_BACKOFF_CAP": "4",
    "ALERTS_SWEEP_INTERVAL": "5",
    "ALERTS_PENDING_GRACE": "10",
    "ALERTS_LEASE_SECONDS": "20",
    "ALERTS_READ_TIMEOUT": "5",
    "ALERTS_CONNECT_TIMEOUT": "3",
}


@dataclass
class Outcome:
    name: str
    sent: int = 0
    received_once: int = 0
    duplicates: int = 0
    lost: int = 0
    bad_signatures: int = 0
    drain_seconds: float | None = None
    note: str = ""
    ids: list[str] = field(default_factory=list)


class Suite:
    def __init__(self, alerts: int, drain_timeout: float) -> None:
        from tests.alerts.receiver import Receiver
        from tests.alerts.worker import ThrowawayRedis, use_broker

        self.n = alerts
        self.drain_timeout = drain_timeout
        self.redis = ThrowawayRedis().start()
        use_broker(self.redis.url)
        self.receiver = Receiver().start()
        self.worker = None
        self.operator, self.hook, self.mailbox = self._setup()

    # --- set-up ---------------------------------------------------------------------

    def _setup(self):
        from datetime import timedelta

        from portal.accounts.models import Operator, Sector
        from portal.alerts.models import Authority, Channel, RoutingRule

        RoutingRule.objects.update(enabled=False)  # the suite's own database: only its channels count
        authority = Authority.objects.create(code="faults", name="Fault suite receiver", language="en")
        hook = Channel(authority=authority, kind="webhook", url=self.receiver.url)
        self.receiver.secrets = [hook.rotate_secret(overlap=timedelta(0))]
        hook.save()
        mailbox = Channel.objects.create(authority=authority, kind="email", email="faults@authority.example")
        RoutingRule.objects.create(event_pattern="*", authority=authority)
        operator = Operator.objects.create(
            slug="faults", name="PT Faults", sector=Sector.ECOMMERCE, contact_email="security@faults.example"
        )
        return operator, hook, mailbox

    def start_worker(self):
        from tests.alerts.worker import Worker

        self.worker = Worker(self.redis.url, pool="prefork", concurrency=4, **WORKER_ENV).start(timeout=60)
        return self.worker

    def stop_worker(self, *, kill: bool = False) -> None:
        if self.worker is not None:
            self.worker.kill() if kill else self.worker.stop()

    def close(self) -> None:
        if self.worker is not None:
            self.worker.cleanup()
        self.receiver.stop()
        self.redis.stop()

    # --- producing and counting ----------------------------------------------------------

    def emit(self, count: int, *, notice: bool = False) -> tuple[list, float]:
        """Commit `count` events (and a notice); return the alerts and the longest commit in seconds."""
        from django.core.mail import EmailMultiAlternatives
        from django.db import transaction

        from portal.alerts.models import EventType
        from portal.alerts.notices import queue_email
        from portal.alerts.services import emit_event

        alerts, longest = [], 0.0
        for i in range(count):
            started = time.monotonic()
            with transaction.atomic():
                alerts.append(
                    emit_event(
                        event_type=EventType.INCIDENT_SUBMITTED,
                        operator=self.operator,
                        payload={"schema": "incident.submitted/1", "incident": {"reference": f"F-{i}"}},
                    )
                )
                if notice and i == 0:
                    message = EmailMultiAlternatives(
                        subject="Fault suite notice", body="A notice to people.", to=["people@faults.example"]
                    )
                    queue_email(message, template="faults/notice", operator=self.operator)
            longest = max(longest, time.monotonic() - started)
        return alerts, longest

    def drained(self, alerts) -> bool:
        from portal.alerts.models import Delivery, DeliveryStatus, Notice, NoticeStatus

        ids = {a.pk for a in alerts}
        open_deliveries = Delivery.objects.filter(alert_id__in=ids).exclude(status=DeliveryStatus.DELIVERED)
        wanted = {a.webhook_id for a in alerts}
        return (
            not open_deliveries.exists()
            and not Notice.objects.exclude(status=NoticeStatus.SENT).exists()
            and wanted <= set(self.receiver.accepted_ids())
        )

    def wait_drained(self, alerts, fault_ended: float) -> float | None:
        deadline = fault_ended + self.drain_timeout
        while time.monotonic() < deadline:
            if self.drained(alerts):
                return time.monotonic() - fault_ended
            time.sleep(0.1)
        return None

    def outcome(self, name: str, alerts, drain: float | None, note: str = "") -> Outcome:
        wanted = {a.webhook_id for a in alerts}
        accepted = [i for i in self.receiver.accepted_ids() if i in wanted]
        bad = sum(1 for r in self.receiver.received if not r.verified)
        return Outcome(
            name=name,
            sent=len(alerts),
            received_once=len(set(accepted)),
            duplicates=len(accepted) - len(set(accepted)),
            lost=len(wanted - set(accepted)),
            bad_signatures=bad,
            drain_seconds=drain,
            note=note,
        )

    def reset(self) -> None:
        """Between scenarios: a normal receiver, an enabled endpoint, no earlier requests."""
        from portal.alerts.models import Channel

        self.receiver.script, self.receiver.default = [], (200, {}, 0.0)
        with self.receiver.lock:
            self.receiver.received.clear()
        Channel.objects.filter(pk=self.hook.pk).update(enabled=True, disabled_reason="")

    # --- scenarios -------------------------------------------------------------------------

    def worker_sigkill_mid_batch(self) -> Outcome:
        self.stop_worker()
        self.receiver.script = [(200, {}, 0.0)] * 5 + [(200, {}, 8.0)]  # the sixth request hangs
        alerts, _ = self.emit(self.n)
        self.start_worker()
        self.receiver.wait_for(lambda: len(self.receiver.received) >= 6, timeout=30)
        self.stop_worker(kill=True)  # SIGKILL, mid-batch, while the receiver holds one request
        self.start_worker()
        ended = time.monotonic()
        return self.outcome("worker SIGKILL mid-batch", alerts, self.wait_drained(alerts, ended))

    def broker_killed(self) -> Outcome:
        self.redis.stop()
        alerts, longest = self.emit(self.n, notice=True)
        time.sleep(2)
        self.redis.start()
        ended = time.monotonic()
        note = f"longest commit {longest:.2f} s"
        return self.outcome("broker killed", alerts, self.wait_drained(alerts, ended), note)

    def broker_frozen(self) -> Outcome:
        self.redis.freeze()  # SIGSTOP: connects succeed, nothing answers
        try:
            alerts, longest = self.emit(self.n, notice=True)
            time.sleep(2)
        finally:
            self.redis.thaw()
        ended = time.monotonic()
        note = f"longest commit {longest:.2f} s"
        return self.outcome("broker frozen (SIGSTOP)", alerts, self.wait_drained(alerts, ended), note)

    def receiver_503(self) -> Outcome:
        self.receiver.default = (503, {}, 0.0)
        alerts, _ = self.emit(self.n)
        time.sleep(3)
        self.receiver.default = (200, {}, 0.0)
        ended = time.monotonic()
        return self.outcome("receiver 503 for 3 s", alerts, self.wait_drained(alerts, ended))

    def receiver_hang(self) -> Outcome:
        self.receiver.default = (200, {}, 30.0)  # answers after the read timeout
        alerts, _ = self.emit(self.n)
        time.sleep(8)
        self.receiver.default = (200, {}, 0.0)
        ended = time.monotonic()
        return self.outcome("receiver hangs for 8 s", alerts, self.wait_drained(alerts, ended))

    def receiver_410(self) -> Outcome:
        from portal.alerts.models import Channel
        from portal.alerts.services import enable_channel

        self.receiver.default = (410, {}, 0.0)
        first, _ = self.emit(1)
        self.receiver.wait_for(lambda: not Channel.objects.get(pk=self.hook.pk).enabled, timeout=30)
        later, _ = self.emit(self.n)
        time.sleep(2)
        self.receiver.default = (200, {}, 0.0)
        enable_channel(channel=Channel.objects.get(pk=self.hook.pk), release=True)  # BSSN, in the admin
        ended = time.monotonic()
        alerts = first + later
        return self.outcome("receiver 410, then enabled", alerts, self.wait_drained(alerts, ended))

    def receiver_400(self) -> Outcome:
        from portal.alerts.models import Delivery, DeliveryStatus
        from portal.alerts.services import retry_delivery

        self.receiver.default = (400, {}, 0.0)
        alerts, _ = self.emit(self.n)
        dead = Delivery.objects.filter(alert__in=alerts, channel=self.hook)
        self.receiver.wait_for(lambda: dead.filter(status=DeliveryStatus.DEAD).count() == self.n, timeout=30)
        self.receiver.default = (200, {}, 0.0)
        for delivery in dead.filter(status=DeliveryStatus.DEAD):
            retry_delivery(delivery=delivery)  # BSSN's retry action
        ended = time.monotonic()
        return self.outcome("receiver 400, then retried", alerts, self.wait_drained(alerts, ended))

    def database_connections_terminated(self) -> Outcome:
        from django.db import connection

        half = self.n // 2
        alerts, _ = self.emit(half)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        more, _ = self.emit(self.n - half)
        ended = time.monotonic()
        alerts += more
        return self.outcome("DB connections terminated", alerts, self.wait_drained(alerts, ended))

    def worker_and_beat_down(self) -> Outcome:
        self.stop_worker()
        alerts, _ = self.emit(self.n, notice=True)
        time.sleep(2)
        self.start_worker()
        ended = time.monotonic()
        return self.outcome("worker and beat down", alerts, self.wait_drained(alerts, ended))


SCENARIOS = {
    "worker-sigkill": Suite.worker_sigkill_mid_batch,
    "broker-killed": Suite.broker_killed,
    "broker-frozen": Suite.broker_frozen,
    "receiver-503": Suite.receiver_503,
    "receiver-hang": Suite.receiver_hang,
    "receiver-410": Suite.receiver_410,
    "receiver-400": Suite.receiver_400,
    "db-terminated": Suite.database_connections_terminated,
    "worker-beat-down": Suite.worker_and_beat_down,
}


def prepare_database() -> None:
    import psycopg
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    db = settings.DATABASES["default"]
    admin = {k: v for k, v in {"host": db["HOST"], "port": db["PORT"], "user": db["USER"]}.items() if v}
    if db.get("PASSWORD"):
        admin["password"] = db["PASSWORD"]
    with psycopg.connect(dbname="postgres", autocommit=True, **admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db["NAME"]}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db["NAME"]}"')
    connection.close()
    call_command("migrate", verbosity=0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=20, help="alerts per scenario")
    parser.add_argument(
        "--drain-timeout", type=float, default=60.0, help="seconds a scenario may take to drain"
    )
    parser.add_argument("--only", default="", help="comma-separated scenario names: " + ", ".join(SCENARIOS))
    args = parser.parse_args()
    chosen = [s for s in args.only.split(",") if s] or list(SCENARIOS)
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))}")
    prepare_database()
    suite = Suite(args.alerts, args.drain_timeout)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    outcomes: list[Outcome] = []
    started = time.monotonic()
    try:
        suite.start_worker()
        for name in chosen:
            suite.reset()
            if suite.worker is None or suite.worker.proc.poll() is not None:
                suite.start_worker()
            outcome = SCENARIOS[name](suite)
            outcomes.append(outcome)
            print(f"  {outcome.name}: done", flush=True)
    finally:
        suite.close()
    print(
        f"fault_suite: {len(outcomes)} scenarios, {args.alerts} alerts each (webhook + e-mail per alert), "
        f"{time.monotonic() - started:.0f} s in all, load average {os.getloadavg()[0]:.1f}; "
        "worker: prefork x4, "
        f"lease {WORKER_ENV['ALERTS_LEASE_SECONDS']} s, sweep every {WORKER_ENV['ALERTS_SWEEP_INTERVAL']} s, "
        f"grace {WORKER_ENV['ALERTS_PENDING_GRACE']} s, backoff from {WORKER_ENV['ALERTS_BACKOFF_BASE']} s"
    )
    header = f"{'scenario':<30} {'sent':>5} {'received once':>14} {'duplicates':>11} {'lost':>5} "
    print(header + f"{'bad sig.':>9} {'time to drain':>14}  note")
    for o in outcomes:
        drain = f"{o.drain_seconds:.1f} s" if o.drain_seconds is not None else "NOT DRAINED"
        print(
            f"{o.name:<30} {o.sent:>5} {o.received_once:>14} {o.duplicates:>11} {o.lost:>5} "
            f"{o.bad_signatures:>9} {drain:>14}  {o.note}"
        )
    if any(o.lost or o.drain_seconds is None or o.bad_signatures for o in outcomes):
        sys.exit(1)


if __name__ == "__main__":
    main()
