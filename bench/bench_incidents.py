"""Benchmark: the BSSN incident changelist and the operator's incident list over 100,000 incidents.

    .venv/bin/python bench/bench_incidents.py [--rows 100000] [--baseline-rows 1000] [--repeat 40]

Uses a PostgreSQL database of its own (BENCH_INCIDENTS_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/portal_bench_incidents), dropped and created anew
each run, builds the schema with migrate and seeds incidents with bulk_create. Each
page is measured first with --baseline-rows incidents, then again after seeding up to
--rows, in the same run: the query count must not grow with the rows, and p95 must
stay under 250 ms (issue 3). Requests go through Django's test client (the whole
stack but the socket). Beside the wall-clock p50/p95 it prints the SQL time of one
request and the median CPU time of the Python process, so a busy machine (the load
average is printed) can be told apart from a slow page.
"""

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/portal_bench_incidents"
DATABASE_URL = os.environ.get("BENCH_INCIDENTS_DATABASE_URL", DEFAULT_URL)
os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings_test"
os.environ["DATABASE_URL"] = DATABASE_URL
os.environ.setdefault("CELERY_BROKER_URL", "memory://")

P95_TARGET_MS = 250.0


from benchdb import recreate_database  # noqa: E402  (bench/ is on the path when run as a script)

if __name__ == "__main__":
    recreate_database(DATABASE_URL)

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, reset_queries  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from incidents.models import (  # noqa: E402
    CLOSING_STATUSES,
    Category,
    DeadlineRule,
    Incident,
    Obligation,
    ReferenceCounter,
    Severity,
    Status,
)
from portal.accounts.models import Membership, Operator, Role, Sector, User  # noqa: E402
from portal.accounts.staff import ANALYST  # noqa: E402

BIG = "bench-big"  # the operator whose list is measured: holds a fifth of all incidents
OPERATORS = 50
STATUSES = [s for s in Status if s not in (Status.DRAFT, Status.DUPLICATE)]  # a duplicate needs an original
NOW = datetime.now(UTC)


def setup_people() -> tuple[User, User, Operator]:
    operators = []
    for i in range(OPERATORS):
        slug = BIG if i == 0 else f"bench-op-{i:02d}"
        operator, _ = Operator.objects.get_or_create(
            slug=slug,
            defaults={
                "name": f"PT Bench {i:02d}",
                "sector": list(Sector)[i % len(Sector)],
                "is_iiv": i % 7 == 0,
                "contact_email": f"security@{slug}.example",
            },
        )
        operators.append(operator)
    reporter, _ = User.objects.get_or_create(
        email="reporter@bench.example", defaults={"full_name": "Reporter"}
    )
    Membership.objects.get_or_create(user=reporter, operator=operators[0], defaults={"role": Role.REPORTER})
    analyst, created = User.objects.get_or_create(
        email="analyst@bench.example", defaults={"full_name": "Analyst", "is_staff": True}
    )
    analyst.groups.add(Group.objects.get(name=ANALYST))
    return reporter, analyst, operators


def seed(total: int, operators: list[Operator], reporter: User, analyst: User) -> None:
    """Add incidents (and their final-report obligations) until there are `total` of them."""
    rng = random.Random(total)  # deterministic: the same data every run
    start = Incident.objects.count()
    final_rule = DeadlineRule.objects.get(code="final-report")
    pdp_rule = DeadlineRule.objects.get(code="pdp-failure-notice")
    batch = 5000
    for offset in range(start, total, batch):
        incidents, planned = [], []
        for n in range(offset, min(offset + batch, total)):
            # A fifth of everything belongs to the big operator; the rest is spread evenly.
            operator = operators[0] if n % 5 == 0 else operators[1 + n % (OPERATORS - 1)]
            # Spread over the last 400 days at any size, so the 1,000-row baseline looks like the whole.
            submitted = NOW - timedelta(minutes=rng.randrange(400 * 24 * 60))
            aware = submitted - timedelta(hours=2)
            status = rng.choice(STATUSES)
            personal = rng.random() < 0.25
            deadlines = [(final_rule, submitted + final_rule.period, 72, rng.random() < 0.6)]
            if personal:
                deadlines.append((pdp_rule, aware + pdp_rule.period, 24, False))
            open_due = [due for _rule, due, _before, met in deadlines if not met]
            incidents.append(
                Incident(
                    reference=f"INS-2025-{n + 1:06d}",
                    operator=operator,
                    created_by=reporter,
                    title=f"Bench incident {n}",
                    category=rng.choice(list(Category)),
                    severity=rng.choice(list(Severity)),
                    bssn_severity=rng.choice(list(Severity)) if rng.random() < 0.3 else "",
                    tlp="amber",
                    description="Seeded for the benchmark.",
                    chronology="-",
                    impact_confidentiality="low",
                    impact_integrity="low",
                    impact_availability="high",
                    affected_services="Checkout",
                    aware_at=aware,
                    detected_at=submitted - timedelta(hours=3),
                    personal_data_involved=personal,
                    data_subjects_count=n % 1000 if personal else None,
                    status=status,
                    assignee=analyst if n % 10 == 0 else None,
                    created_at=submitted,
                    submitted_at=submitted,
                    closed_at=submitted + timedelta(days=3) if status in CLOSING_STATUSES else None,
                    next_due_at=min(open_due) if open_due else None,
                )
            )
            planned.append(deadlines)
        created = Incident.objects.bulk_create(incidents, batch_size=batch)
        Obligation.objects.bulk_create(
            [
                Obligation(
                    incident=incident,
                    rule=rule,
                    due_at=due,
                    remind_at=due - timedelta(hours=before),
                    met_at=due - timedelta(days=1) if met else None,
                )
                for incident, deadlines in zip(created, planned, strict=True)
                for rule, due, before, met in deadlines
            ],
            batch_size=batch,
        )
    ReferenceCounter.objects.update_or_create(year=2025, defaults={"last_number": total})
    with connection.cursor() as cursor:  # what autovacuum would do after a bulk load
        cursor.execute("VACUUM ANALYZE incidents_incident")
        cursor.execute("VACUUM ANALYZE incidents_obligation")


def staff_client(user: User) -> Client:
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    client = Client()
    client.force_login(user)
    device, _ = TOTPDevice.objects.get_or_create(user=user, name="bench", defaults={"confirmed": True})
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


PAGES = [
    ("admin changelist", "staff", "/admin/incidents/incident/"),
    (
        "admin: overdue + sector + status",
        "staff",
        "/admin/incidents/incident/?deadline=overdue&operator__sector__exact=ecommerce&status__exact=in_progress",
    ),
    (
        "admin: severity + IIV + personal data",
        "staff",
        "/admin/incidents/incident/?severity=high&operator__is_iiv__exact=1&personal_data_involved__exact=1",
    ),
    ("admin: search organisation", "staff", "/admin/incidents/incident/?q=Bench+07"),
    ("admin changelist, page 3", "staff", "/admin/incidents/incident/?p=3"),
    ("operator list", "operator", f"/o/{BIG}/incidents/"),
    ("operator list: filters, page 4", "operator", f"/o/{BIG}/incidents/?status=triage&severity=low&page=4"),
]


def measure(clients: dict[str, Client], repeat: int) -> dict[str, tuple[int, float, float, float, float]]:
    results = {}
    for label, who, url in PAGES:
        client = clients[who]
        for _ in range(3):  # warm up: plans, caches, session
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
        reset_queries()  # each request clears the log (request_started): start the capture empty
        with CaptureQueriesContext(connection) as queries:
            client.get(url)
        # Read now: the next request clears the log. The database's share of one request:
        query_count = len(queries.captured_queries)
        db_ms = sum(float(q["time"]) for q in queries.captured_queries) * 1000
        times, cpu = [], []
        for _ in range(repeat):
            started, started_cpu = time.perf_counter(), time.process_time()
            client.get(url)
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
        times.sort()
        p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
        results[label] = (query_count, statistics.median(times), p95, db_ms, statistics.median(cpu))
    return results


def profile(clients: dict[str, Client]) -> None:
    import cProfile
    import pstats

    for label, who, url in PAGES:
        profiler = cProfile.Profile()
        profiler.runcall(clients[who].get, url)
        print(f"== {label}")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--baseline-rows", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument(
        "--profile", action="store_true", help="print where one request of each page spends time"
    )
    args = parser.parse_args()

    # Not setup_test_environment(): its instrumented template rendering would be measured too.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    print(f"database: {connection.settings_dict['NAME']} (PostgreSQL {connection.pg_version // 10000})")
    call_command("migrate", verbosity=0)
    reporter, analyst, operators = setup_people()
    clients = {"staff": staff_client(analyst), "operator": Client()}
    clients["operator"].force_login(reporter)

    started = time.perf_counter()
    seed(args.baseline_rows, operators, reporter, analyst)
    baseline = measure(clients, args.repeat)
    seed(args.rows, operators, reporter, analyst)
    seeded_s = time.perf_counter() - started
    full = measure(clients, args.repeat)
    if args.profile:
        profile(clients)
    big = Incident.objects.filter(operator__slug=BIG).count()
    print(
        f"seeded {Incident.objects.count():,} incidents and {Obligation.objects.count():,} deadlines "
        f"in {seeded_s:.1f} s; the operator list shows {BIG!r} with {big:,} incidents\n"
    )

    print(f"load average before measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    header = f"{'page':40} {'rows':>8} {'queries':>8} {'p50 ms':>8} {'p95 ms':>8} {'SQL ms':>8} {'CPU ms':>8}"
    print(header)
    print("-" * len(header))
    failures = []
    for label, _who, _url in PAGES:
        for rows, result in ((args.baseline_rows, baseline[label]), (args.rows, full[label])):
            count, p50, p95, db_ms, cpu_ms = result
            print(f"{label:40} {rows:>8,} {count:>8} {p50:>8.1f} {p95:>8.1f} {db_ms:>8.1f} {cpu_ms:>8.1f}")
        if full[label][0] != baseline[label][0]:
            failures.append(
                f"{label}: {baseline[label][0]} queries at {args.baseline_rows:,} rows, "
                f"{full[label][0]} at {args.rows:,}"
            )
        if full[label][2] > P95_TARGET_MS:
            failures.append(f"{label}: p95 {full[label][2]:.1f} ms > {P95_TARGET_MS:.0f} ms")
    print()
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print(
        f"OK: query counts equal at {args.baseline_rows:,} and {args.rows:,} rows; "
        f"every p95 under {P95_TARGET_MS:.0f} ms."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
