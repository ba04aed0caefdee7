"""Benchmark: an incident created and submitted through the API, beside the same journey through the web form.

    .venv/bin/python bench/bench_api.py [--journeys 200] [--clients 4]

Both journeys run in the same run, on the same database, with --clients concurrent
clients (threads, each with its own database connection): the API journey is two
requests (POST /api/v1/incidents/ with every field, then POST .../submit/), the web
journey one form post ("save and submit"). Requests go through Django's test client
(the whole stack but the socket). Prints journeys/s, requests/s and p50/p95 journey
latency of each. Uses a PostgreSQL database of its own (BENCH_API_DATABASE_URL,
default postgres://postgres@127.0.0.1:5432/portal_bench_api), dropped and created anew.
Target (issue 16): the API journey no slower than the web form's.
"""

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/portal_bench_api"
DATABASE_URL = os.environ.get("BENCH_API_DATABASE_URL", DEFAULT_URL)
os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings_test"
os.environ["DATABASE_URL"] = DATABASE_URL
os.environ.setdefault("CELERY_BROKER_URL", "memory://")
os.environ["API_RATE_LIMIT"] = "1000000/min"  # measure the work, not the limiter


from benchdb import recreate_database  # noqa: E402  (bench/ is on the path when run as a script)

if __name__ == "__main__":
    recreate_database(DATABASE_URL)

import django  # noqa: E402

django.setup()

from datetime import timedelta  # noqa: E402

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from portal.accounts.models import Membership, Operator, Role, Sector, User  # noqa: E402
from portal.api.keys import api_key_create  # noqa: E402

FIELDS = {
    "title": "Ransomware on the billing servers",
    "category": "ransomware",
    "severity": "medium",
    "tlp": "amber",
    "reporter_name": "Budi",
    "reporter_email": "soc@bench.example",
    "reporter_phone": "+62 21 555 0100",
    "description": "Files encrypted on two servers.",
    "chronology": "08:00 alert; 08:30 isolated.",
    "impact_confidentiality": "low",
    "impact_integrity": "high",
    "impact_availability": "high",
    "affected_services": "Billing",
    "detected_at": "2026-01-01T08:00:00+07:00",
    "aware_at": "2026-01-01T08:30:00+07:00",
}


def setup() -> tuple[Operator, User, str]:
    operator = Operator.objects.create(
        slug="bench-api", name="PT Bench API", sector=Sector.ECOMMERCE, contact_email="security@bench.example"
    )
    admin = User.objects.create_user("admin@bench.example", None, full_name="Admin")
    Membership.objects.create(user=admin, operator=operator, role=Role.ADMIN)
    reporter = User.objects.create_user("reporter@bench.example", None, full_name="Reporter")
    Membership.objects.create(user=reporter, operator=operator, role=Role.REPORTER)
    _key, secret = api_key_create(
        operator=operator,
        actor=admin,
        name="bench",
        scopes=["incidents:read", "incidents:write"],
        expires_at=timezone.now() + timedelta(days=1),
    )
    return operator, reporter, secret


def api_journey(client: Client, headers: dict) -> int:
    created = client.post("/api/v1/incidents/", FIELDS, content_type="application/json", headers=headers)
    assert created.status_code == 201, created.content
    ref = created.json()["reference"]
    submitted = client.post(f"/api/v1/incidents/{ref}/submit/", headers=headers)
    assert submitted.status_code == 200, submitted.content
    return 2


def web_journey(client: Client, slug: str) -> int:
    form = {**FIELDS, "detected_at": "2026-01-01T08:00", "aware_at": "2026-01-01T08:30", "action": "submit"}
    response = client.post(f"/o/{slug}/incidents/new/", form)
    assert response.status_code == 302, response.content[:2000]
    return 1


def run(journey, make_client, *, journeys: int, clients: int) -> dict:
    latencies: list[float] = []
    requests = [0]
    lock = threading.Lock()
    per_client = journeys // clients

    def worker():
        client, arg = make_client()
        mine, count = [], 0
        try:
            for _ in range(per_client):
                start = time.perf_counter()
                count += journey(client, arg)
                mine.append(time.perf_counter() - start)
        finally:
            connection.close()
        with lock:
            latencies.extend(mine)
            requests[0] += count

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "journeys_s": len(latencies) / elapsed,
        "requests_s": requests[0] / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[int(len(latencies) * 0.95) - 1] * 1000,
        "n": len(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--journeys", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    settings.ALLOWED_HOSTS = ["testserver"]  # Django's test client's host name
    call_command("migrate", verbosity=0)
    operator, reporter, secret = setup()
    connection.close()

    def api_client():
        return Client(), {"Authorization": f"Bearer {secret}"}

    def web_client():
        client = Client()
        client.force_login(reporter)
        return client, operator.slug

    # Warm up both paths once (imports, template loading), then measure.
    run(api_journey, api_client, journeys=args.clients, clients=args.clients)
    run(web_journey, web_client, journeys=args.clients, clients=args.clients)
    results = {
        "API (create + submit)": run(api_journey, api_client, journeys=args.journeys, clients=args.clients),
        "web form (save and submit)": run(
            web_journey, web_client, journeys=args.journeys, clients=args.clients
        ),
    }
    print(
        f"load average: {os.getloadavg()[0]:.2f}; {args.clients} concurrent clients, "
        f"{args.journeys} journeys per path"
    )
    print(f"{'journey':<28} {'journeys/s':>10} {'requests/s':>10} {'p50 ms':>8} {'p95 ms':>8}")
    for name, r in results.items():
        print(
            f"{name:<28} {r['journeys_s']:>10.1f} {r['requests_s']:>10.1f} "
            f"{r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f}"
        )
    ratio = (
        results["API (create + submit)"]["journeys_s"] / results["web form (save and submit)"]["journeys_s"]
    )
    print(f"API journeys/s ÷ web form journeys/s = {ratio:.2f}")


if __name__ == "__main__":
    main()
