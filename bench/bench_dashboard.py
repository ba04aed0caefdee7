"""Benchmark: BSSN's dashboard, the incident lists and observable correlation at a million incidents.

    .venv/bin/python bench/bench_dashboard.py [--rows 1000000] [--observables 5000000]
        [--baseline-rows 1000] [--repeat 20]

Uses a PostgreSQL database of its own (BENCH_DASHBOARD_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/portal_bench_dashboard), dropped and created anew each
run. Incidents and their deadlines are seeded as bench/bench_incidents.py seeds them
(bulk_create); observables with one server-side INSERT … SELECT over generate_series per
batch, drawn from a pool of values so that one indicator recurs at several operators.

It measures, at --baseline-rows and again at --rows in the same run:
- the admin incident changelist and the operator's list: query count constant, p95 < 250 ms;
- each dashboard panel on its own (its CSV download, which computes only that panel):
  p95 < 500 ms;
- the observables changelist and its "seen at two or more operators" filter;
- correlating a new observable (once attached: list the other incidents sharing it and
  whether the incident's indicators were reported elsewhere): p95 < 50 ms.
The load average is printed: the machine is shared, so read the figures with it.
"""

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/portal_bench_dashboard"
DATABASE_URL = os.environ.get("BENCH_DASHBOARD_DATABASE_URL", DEFAULT_URL)
os.environ["BENCH_INCIDENTS_DATABASE_URL"] = DATABASE_URL  # bench_incidents reads it on import

import bench_incidents  # noqa: E402  (sets up Django on DATABASE_URL)
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, reset_queries  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from incidents import services  # noqa: E402
from incidents.models import Incident, Observable  # noqa: E402

LIST_TARGET_MS = 250.0
PANEL_TARGET_MS = 500.0
CORRELATION_TARGET_MS = 50.0
VALUE_POOL = 400_000  # distinct indicator values: with millions of rows, most recur across operators
KINDS = ["domain", "ipv4", "url", "sha256", "md5"]

PAGES = [
    ("admin incident changelist", "staff", "/admin/incidents/incident/", LIST_TARGET_MS),
    ("operator incident list", "operator", f"/o/{bench_incidents.BIG}/incidents/", LIST_TARGET_MS),
    ("admin observables changelist", "staff", "/admin/incidents/observable/", LIST_TARGET_MS),
    (
        "admin observables: shared 30 d",
        "staff",
        "/admin/incidents/observable/?shared=operators",
        LIST_TARGET_MS,
    ),
    *(
        (f"panel {key}", "staff", f"/admin/dashboard/?download={key}&format=csv", PANEL_TARGET_MS)
        for key in (
            "weekly_sector",
            "weekly_category",
            "open_age",
            "durations",
            "compliance",
            "epicurve",
            "delivery",
        )
    ),
    ("dashboard page (all panels)", "staff", "/admin/dashboard/", None),
]


def seed_observables(total: int) -> None:
    """Add observables until there are `total`, server-side, attached to incidents round-robin."""
    have = Observable.objects.count()
    if have >= total:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), count(*) FROM incidents_incident")
        first_id, incidents = cursor.fetchone()
        batch = 500_000
        for start in range(have, total, batch):
            stop = min(start + batch, total)
            # Value n of the pool in its kind's shape; the incident by a multiplicative hash
            # of g, so one value lands on incidents of many operators.
            cursor.execute(
                """
                INSERT INTO incidents_observable
                    (incident_id, operator_id, kind, value, tlp, note, added_by_bssn, created_at)
                SELECT i.id, i.operator_id, k.kind,
                       CASE k.kind
                         WHEN 'domain' THEN 'ioc-' || v.n || '.example'
                         WHEN 'ipv4' THEN
                           '10.' || mod(v.n / 65536, 256) || '.' || mod(v.n / 256, 256)
                           || '.' || mod(v.n, 256)
                         WHEN 'url' THEN 'http://ioc-' || v.n || '.example/login'
                         WHEN 'md5' THEN md5(v.n::text)
                         ELSE md5(v.n::text) || md5((v.n + 1)::text)
                       END,
                       CASE WHEN mod(g, 3) = 0 THEN 'green' ELSE 'amber' END, '', false, i.created_at
                FROM generate_series(%s::bigint, %s::bigint) AS g
                CROSS JOIN LATERAL (SELECT mod(g * 7919, %s) AS n) AS v
                CROSS JOIN LATERAL (
                    SELECT (ARRAY['domain', 'ipv4', 'url', 'sha256', 'md5'])[1 + mod(g, 5)] AS kind
                ) AS k
                JOIN incidents_incident i ON i.id = %s + mod(g * 104729, %s)
                ON CONFLICT DO NOTHING
                """,
                [start, stop - 1, VALUE_POOL, first_id, incidents],
            )
        cursor.execute("VACUUM ANALYZE incidents_observable")


def measure(clients, repeat: int) -> dict:
    results = {}
    for label, who, url, _target in PAGES:
        client = clients[who]
        for _ in range(2):  # warm up: plans, caches, session
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
        reset_queries()
        with CaptureQueriesContext(connection) as queries:
            client.get(url)
        count = len(queries.captured_queries)
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            client.get(url)
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
        results[label] = (count, statistics.median(times), p95)
    return results


def measure_correlation(analyst, repeat: int) -> tuple[float, float]:
    """Attach a new indicator that recurs elsewhere, then time its correlation; return p50 and p95 in ms.

    The attach (a write with its audit event) is not timed: the target is the lookup of the
    other incidents sharing the indicator and of whether it was reported elsewhere.
    """
    rng = random.Random(7)
    incidents = list(Incident.objects.order_by("?").values_list("pk", flat=True)[: repeat * 2])
    times = []
    for n in range(repeat):
        incident = Incident.objects.select_related("operator").get(pk=incidents[n])
        value = f"ioc-{rng.randrange(VALUE_POOL)}.example"
        (observable,) = services.attach_observables(
            incident=incident, actor=analyst, entries=[("domain", value)], tlp="amber", by_bssn=True
        ) or [Observable.objects.get(incident=incident, kind="domain", value=value)]
        started = time.perf_counter()
        list(services.incidents_sharing(observable=observable)[:50])
        services.reported_elsewhere(incident=incident)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--observables", type=int, default=None, help="default: five per incident")
    parser.add_argument("--baseline-rows", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    observables = args.observables if args.observables is not None else args.rows * 5

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    print(f"database: {connection.settings_dict['NAME']} (PostgreSQL {connection.pg_version // 10000})")
    call_command("migrate", verbosity=0)
    reporter, analyst, operators = bench_incidents.setup_people()
    from django.contrib.auth.models import Group
    from django.test import Client

    from portal.accounts.staff import SUPERVISOR, sync_group_permissions

    sync_group_permissions()
    analyst.groups.add(Group.objects.get(name=SUPERVISOR))
    clients = {"staff": bench_incidents.staff_client(analyst), "operator": Client()}
    clients["operator"].force_login(reporter)

    started = time.perf_counter()
    bench_incidents.seed(args.baseline_rows, operators, reporter, analyst)
    seed_observables(args.baseline_rows * 5)
    baseline = measure(clients, args.repeat)
    baseline_corr = measure_correlation(analyst, args.repeat)
    bench_incidents.seed(args.rows, operators, reporter, analyst)
    seed_observables(observables)
    seeded_s = time.perf_counter() - started
    full = measure(clients, args.repeat)
    full_corr = measure_correlation(analyst, args.repeat)
    print(
        f"seeded {Incident.objects.count():,} incidents and {Observable.objects.count():,} observables "
        f"in {seeded_s:.1f} s\n"
    )
    print(f"load average before measuring: {os.getloadavg()} on {os.cpu_count()} cores")
    header = f"{'page':36} {'rows':>10} {'queries':>8} {'p50 ms':>9} {'p95 ms':>9} {'target':>7}"
    print(header)
    print("-" * len(header))
    failures = []
    for label, _who, _url, target in PAGES:
        for rows, (count, p50, p95) in ((args.baseline_rows, baseline[label]), (args.rows, full[label])):
            shown = f"{target:.0f}" if target else "-"
            print(f"{label:36} {rows:>10,} {count:>8} {p50:>9.1f} {p95:>9.1f} {shown:>7}")
        if label.startswith(("admin", "operator")) and full[label][0] != baseline[label][0]:
            failures.append(
                f"{label}: {baseline[label][0]} queries at baseline, {full[label][0]} at full size"
            )
        if target and full[label][2] > target:
            failures.append(f"{label}: p95 {full[label][2]:.1f} ms > {target:.0f} ms")
    for rows, (p50, p95) in ((args.baseline_rows, baseline_corr), (args.rows, full_corr)):
        print(
            f"{'correlate a new observable':36} {rows:>10,} {'-':>8} {p50:>9.1f} {p95:>9.1f}"
            f" {CORRELATION_TARGET_MS:>7.0f}"
        )
    if full_corr[1] > CORRELATION_TARGET_MS:
        failures.append(f"correlation: p95 {full_corr[1]:.1f} ms > {CORRELATION_TARGET_MS:.0f} ms")
    print(f"load average after measuring: {os.getloadavg()}")
    print()
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("OK: every target met.")
    return 0


if __name__ == "__main__":
    bench_incidents.recreate_database(DATABASE_URL)
    sys.exit(main())
