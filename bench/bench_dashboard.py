"""Benchmark: BSSN's dashboard, the incident lists and observable correlation at a million incidents.

One command re-runs it all (about 15 minutes on a quiet 2-core machine):

    .venv/bin/python bench/bench_dashboard.py

    options: [--rows 1000000] [--observables 5000000] [--baseline-rows 1000] [--repeat 20]
             [--database portal_bench_dashboard] [--reuse] [--drop]

It uses a PostgreSQL database of its own (--database, or BENCH_DASHBOARD_DATABASE_URL;
default portal_bench_dashboard), dropped and created anew unless --reuse (then seeding
only tops it up, and --baseline-rows 0 skips the baseline). --drop removes it at the end
(about 12 GB at a million incidents). Seeding is server-side SQL (bench/scale_seed.py):
2,000 organisations, --rows incidents with their deadlines, status history, alerts and
deliveries, --observables observables (a fifth from a shared pool, so indicators recur
across organisations) and rows/4 suspected-case flags. The dashboard's summary tables are
then refreshed as beat does (incidents/summaries.py), and the refresh is timed.

Every surface is measured at --baseline-rows and again at --rows in the same run, through
Django's test client (the whole stack but the socket), with its query count, p50 and p95:
- the admin incident changelist (default, filtered, searched, sorted, page 2 and a deep
  page) and the operator's list of its largest organisation: query count constant, p95 < 250 ms;
- every dashboard panel on its own (its CSV download computes only that panel) with the
  default period, a sector, a province, one year and three years: p95 < 500 ms, and the
  whole page;
- the observables changelist, its search and its "seen at two or more operators" filter:
  p95 < 250 ms;
- correlating a new observable (attach one that recurs elsewhere, then what the pages
  show: the other incidents sharing it, and whether the incident's indicators were
  reported elsewhere): p95 < 50 ms, the attach (a write with its audit event) beside it.
The load average is printed before and after: the machine is shared, read the figures with it.
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
sys.path.insert(0, str(ROOT / "bench"))

LIST_TARGET_MS = 250.0
PANEL_TARGET_MS = 500.0
CORRELATION_TARGET_MS = 50.0
PANEL_KEYS = (
    "weekly_sector",
    "weekly_category",
    "open_age",
    "durations",
    "compliance",
    "epicurve",
    "delivery",
)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="incidents")
    parser.add_argument("--observables", type=int, default=None, help="default: five per incident")
    parser.add_argument("--baseline-rows", type=int, default=1_000, help="0: no baseline")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--database", default=None, help="database name (must start with portal_bench)")
    parser.add_argument("--reuse", action="store_true", help="keep the database and only top it up")
    parser.add_argument("--drop", action="store_true", help="drop the database at the end")
    parser.add_argument("--only", default="", help="measure only pages whose label contains this")
    return parser.parse_args()


ARGS = parse_args() if __name__ == "__main__" else None
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/portal_bench_dashboard"
DATABASE_URL = os.environ.get("BENCH_DASHBOARD_DATABASE_URL", DEFAULT_URL)
if ARGS and ARGS.database:
    DATABASE_URL = DEFAULT_URL.rsplit("/", 1)[0] + "/" + ARGS.database
os.environ["BENCH_INCIDENTS_DATABASE_URL"] = DATABASE_URL  # bench_incidents reads it on import


def _stable_keys() -> None:
    """Keep the encryption keys of the seeded rows in var/ (not in git), so --reuse can read them back."""
    from cryptography.fernet import Fernet

    path = ROOT / "var" / "bench-dashboard-keys"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"{Fernet.generate_key().decode()}\n{Fernet.generate_key().decode()}\n")
        path.chmod(0o600)
    fernet, blind = path.read_text().split()
    os.environ.setdefault("FERNET_KEYS", fernet)
    os.environ.setdefault("BLIND_INDEX_KEY", blind)


_stable_keys()

from benchdb import recreate_database  # noqa: E402

if ARGS and not ARGS.reuse:
    recreate_database(DATABASE_URL)
elif ARGS:
    import psycopg

    admin_url = DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        name = DATABASE_URL.rsplit("/", 1)[1]
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            recreate_database(DATABASE_URL)

import bench_incidents  # noqa: E402  (sets up Django on DATABASE_URL)
import scale_seed  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, reset_queries  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from incidents import services  # noqa: E402
from incidents.models import Incident, Observable  # noqa: E402
from portal.accounts.models import Membership, Operator, Role, User  # noqa: E402
from portal.accounts.staff import SUPERVISOR, sync_group_permissions  # noqa: E402

NOW = datetime.now(UTC).replace(microsecond=0)


def pages(rows: int = 1_000_000) -> list[tuple[str, str, str, float | None]]:
    """Return (label, who, url, target ms) of every surface measured with `rows` incidents."""
    big = scale_seed.BIG_SLUG
    deep = min(400, max(1, rows // 25 - 1))  # the last page under the 10,000-row count cap
    today = NOW.date()
    admin = "/admin/incidents/incident/"
    found = [
        ("admin changelist", "staff", admin, LIST_TARGET_MS),
        ("admin: page 2", "staff", f"{admin}?p=2", LIST_TARGET_MS),
        ("admin: deep page (400, or the last)", "staff", f"{admin}?p={deep}", LIST_TARGET_MS),
        (
            "admin: overdue + sector + status",
            "staff",
            f"{admin}?deadline=overdue&operator__sector__exact=ecommerce&status__exact=in_progress",
            LIST_TARGET_MS,
        ),
        (
            "admin: severity + IIV + personal data",
            "staff",
            f"{admin}?severity=high&operator__is_iiv__exact=1&personal_data_involved__exact=1",
            LIST_TARGET_MS,
        ),
        ("admin: category, page 2", "staff", f"{admin}?category__exact=ransomware&p=2", LIST_TARGET_MS),
        ("admin: search organisation", "staff", f"{admin}?q=Organisation+0007", LIST_TARGET_MS),
        ("admin: search reference", "staff", f"{admin}?q=INS-2025-0000777", LIST_TARGET_MS),
        ("admin: sort by deadline", "staff", f"{admin}?o=7", LIST_TARGET_MS),
        ("admin: sort by deadline, latest first", "staff", f"{admin}?o=-7", LIST_TARGET_MS),
        ("admin: sort by reference, descending", "staff", f"{admin}?o=-1", LIST_TARGET_MS),
        ("admin: sort by status, page 2", "staff", f"{admin}?o=-4&p=2", LIST_TARGET_MS),
        ("operator list", "operator", f"/o/{big}/incidents/", LIST_TARGET_MS),
        ("operator list: page 4", "operator", f"/o/{big}/incidents/?page=4", LIST_TARGET_MS),
        (
            "operator list: status + severity",
            "operator",
            f"/o/{big}/incidents/?status=closed&severity=low",
            LIST_TARGET_MS,
        ),
        (
            "operator list: category, page 3",
            "operator",
            f"/o/{big}/incidents/?category=ransomware&page=3",
            LIST_TARGET_MS,
        ),
        # The organisation's own dashboard (its trends and deadline record): no target in issue 17.
        ("operator dashboard (trends)", "operator", f"/o/{big}/", None),
        ("observables changelist", "staff", "/admin/incidents/observable/", LIST_TARGET_MS),
        ("observables: page 3", "staff", "/admin/incidents/observable/?p=3", LIST_TARGET_MS),
        (
            "observables: shared 30 d",
            "staff",
            "/admin/incidents/observable/?shared=operators",
            LIST_TARGET_MS,
        ),
        (
            "observables: shared 30 d, page 2",
            "staff",
            "/admin/incidents/observable/?shared=operators&p=2",
            LIST_TARGET_MS,
        ),
        (
            "observables: search value",
            "staff",
            "/admin/incidents/observable/?q=login-s7.secure-bank.example",
            LIST_TARGET_MS,
        ),
    ]
    periods = {
        "26 weeks": "",
        "sector": "&sector=fintech_payment",
        "province": "&province=ID-JB",
        "1 year": f"&since={today - timedelta(days=365)}&until={today}",
        "3 years": f"&since={today - timedelta(days=3 * 365)}&until={today}",
        "3 y + sector + prov": (
            f"&since={today - timedelta(days=3 * 365)}&until={today}&sector=healthtech&province=ID-JK"
        ),
    }
    for key in PANEL_KEYS:
        for name, query in periods.items():
            found.append(
                (
                    f"panel {key}: {name}",
                    "staff",
                    f"/admin/dashboard/?download={key}&format=csv{query}",
                    PANEL_TARGET_MS,
                )
            )
    found.append(("dashboard page: 26 weeks", "staff", "/admin/dashboard/", PANEL_TARGET_MS))
    found.append(
        (
            "dashboard page: 3 years",
            "staff",
            f"/admin/dashboard/?since={today - timedelta(days=3 * 365)}&until={today}",
            PANEL_TARGET_MS,
        )
    )
    return found


def p95(times: list[float]) -> float:
    times = sorted(times)
    return times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]


def measure(clients, repeat: int, only: str, rows: int) -> dict:
    results = {}
    for label, who, url, _target in pages(rows):
        if only and only not in label:
            continue
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
        results[label] = (count, statistics.median(times), p95(times))
        print(
            f"  {label:42} {count:>4} queries  p50 {results[label][1]:8.1f}  p95 {results[label][2]:8.1f} ms",
            flush=True,
        )
    return results


def measure_correlation(analyst, repeat: int) -> dict[str, tuple[float, float]]:
    """Attach an indicator that recurs elsewhere to random incidents; time the attach and the correlation.

    The correlation is what the pages then read: the other incidents sharing the new
    indicator (BSSN's observable page) and which of the incident's indicators other
    organisations reported as CLEAR or GREEN (the operator's incident page).
    """
    rng = random.Random(7)
    top = Incident.objects.order_by("-pk").values_list("pk", flat=True).first()
    attach, correlate = [], []
    for _ in range(repeat):
        incident = (
            Incident.objects.select_related("operator").filter(pk__lte=rng.randrange(1, top + 1)).reported()
        )
        incident = incident.order_by("-pk").first()
        # A heavy hitter now and then (dozens of organisations), mostly ordinary shared ones.
        n = int(scale_seed.SHARED_POOL * rng.random() ** 3)
        value = f"login-s{n}.secure-bank.example"
        started = time.perf_counter()
        services.attach_observables(
            incident=incident, actor=analyst, entries=[("domain", value)], tlp="green", by_bssn=True
        )
        attach.append((time.perf_counter() - started) * 1000)
        observable = Observable.objects.get(incident=incident, kind="domain", value=value)
        started = time.perf_counter()
        list(services.incidents_sharing(observable=observable)[:50])
        services.reported_elsewhere(incident=incident)
        correlate.append((time.perf_counter() - started) * 1000)
    return {
        "attach a new observable": (statistics.median(attach), p95(attach)),
        "correlate a new observable": (statistics.median(correlate), p95(correlate)),
    }


def refresh_summaries() -> float | None:
    """Refresh the dashboard's summary tables as beat does; return the seconds it took."""
    try:
        from incidents import summaries
    except ImportError:
        return None
    started = time.perf_counter()
    summaries.refresh()
    return time.perf_counter() - started


def setup() -> tuple[User, User, dict]:
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    call_command("migrate", verbosity=0)
    sync_group_permissions()
    scale_seed.prepare()
    scale_seed.seed_operators()
    reporter, _ = User.objects.get_or_create(
        email="reporter@bench.example", defaults={"full_name": "Reporter"}
    )
    Membership.objects.get_or_create(
        user=reporter,
        operator=Operator.objects.get(slug=scale_seed.BIG_SLUG),
        defaults={"role": Role.REPORTER},
    )
    analyst, _ = User.objects.get_or_create(
        email="analyst@bench.example", defaults={"full_name": "Analyst", "is_staff": True}
    )
    analyst.groups.add(Group.objects.get(name=SUPERVISOR))
    clients = {"staff": bench_incidents.staff_client(analyst), "operator": Client()}
    clients["operator"].force_login(reporter)
    return reporter, analyst, clients


def seed(rows: int, observables: int, reporter: User, analyst: User) -> float:
    started = time.perf_counter()
    scale_seed.seed(rows, observables=observables, now=NOW, reporter_id=reporter.pk, analyst_id=analyst.pk)
    return time.perf_counter() - started


def counts() -> str:
    with connection.cursor() as cursor:
        found = []
        for table, label in (
            ("incidents_incident", "incidents"),
            ("incidents_obligation", "deadlines"),
            ("incidents_statuschange", "status changes"),
            ("incidents_observable", "observables"),
            ("cases_caseflag", "suspected-case flags"),
            ("alerts_delivery", "alert deliveries"),
        ):
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608  (our own table names)
            found.append(f"{cursor.fetchone()[0]:,} {label}")
        cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        return ", ".join(found) + f"; database size {cursor.fetchone()[0]}"


def report(args, baseline: dict, full: dict) -> list[str]:
    header = f"{'surface':42} {'rows':>10} {'queries':>8} {'p50 ms':>9} {'p95 ms':>9} {'target':>7}  ok"
    print(header)
    print("-" * len(header))
    failures = []
    targets = {label: target for label, _who, _url, target in pages()}
    targets["correlate a new observable"] = CORRELATION_TARGET_MS
    targets["attach a new observable"] = None
    for label, result in full.items():
        target = targets[label]
        rows = [(args.baseline_rows, baseline[label])] if label in baseline else []
        for n, (count, p50, p95_ms) in [*rows, (args.rows, result)]:
            shown = f"{target:.0f}" if target else "-"
            ok = "" if not target or n != args.rows else ("yes" if p95_ms <= target else "NO")
            queries = "-" if count is None else count
            print(f"{label:42} {n:>10,} {queries:>8} {p50:>9.1f} {p95_ms:>9.1f} {shown:>7}  {ok}")
        count = result[0]
        lists = label in baseline and count is not None and not label.startswith(("panel", "dashboard"))
        if lists and count != baseline[label][0]:
            failures.append(f"{label}: {baseline[label][0]} queries at baseline, {count} at full size")
        if target and result[2] > target:
            failures.append(f"{label}: p95 {result[2]:.1f} ms > {target:.0f} ms")
    return failures


def main(args) -> int:
    observables = args.observables if args.observables is not None else args.rows * 5
    print(f"database: {connection.settings_dict['NAME']} (PostgreSQL {connection.pg_version // 10000})")
    reporter, analyst, clients = setup()
    baseline = {}
    if args.baseline_rows:
        seed(args.baseline_rows, args.baseline_rows * observables // max(args.rows, 1), reporter, analyst)
        refresh_summaries()
        baseline = measure(clients, args.repeat, args.only, args.baseline_rows)
        baseline.update({k: (None, *v) for k, v in measure_correlation(analyst, args.repeat).items()})
    seeded_s = seed(args.rows, observables, reporter, analyst)
    print("seeding steps (s):", {k: round(v, 1) for k, v in scale_seed.STEP_SECONDS.items()})
    print(f"seeded up to {args.rows:,} incidents in {seeded_s:.1f} s: {counts()}")
    refreshed_s = refresh_summaries()
    if refreshed_s is not None:
        print(f"dashboard summaries refreshed in {refreshed_s:.1f} s")
    print(f"load average before measuring: {os.getloadavg()} on {os.cpu_count()} cores\n")
    full = measure(clients, args.repeat, args.only, args.rows)
    full.update({k: (None, *v) for k, v in measure_correlation(analyst, args.repeat).items()})
    failures = report(args, baseline, full)
    print(f"\nload average after measuring: {os.getloadavg()}")
    if args.drop:
        connection.close()
        from benchdb import drop_database

        drop_database(DATABASE_URL)
        print(f"dropped {DATABASE_URL.rsplit('/', 1)[1]}")
    print()
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("OK: every target met.")
    return 0


if __name__ == "__main__":
    sys.exit(main(ARGS))
