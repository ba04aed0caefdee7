"""Load test: a real gunicorn server with the production settings, many sessions at once.

    .venv/bin/python bench/bench_load.py [--duration 120] [--operators 50] [--analysts 5]
    .venv/bin/python bench/bench_load.py --smoke        # 15 s, 5 operators, 1 analyst

Builds a database of its own (BENCH_LOAD_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/portal_bench_load), dropped and created anew each
run, migrates it, collects static files and seeds organisations, reporters, BSSN
analysts (with a TOTP device) and some incidents. It then starts gunicorn on
127.0.0.1 with `portal.settings` and DEBUG off, PostgreSQL and the Redis broker
(BENCH_LOAD_REDIS_URL, default redis://127.0.0.1:6379/1; that Redis database is
emptied afterwards), and runs, for --duration seconds:

- --operators sessions, each signed in through the real sign-in form, filing
  incidents through the real form, uploading evidence and browsing lists and pages,
  with a random pause between actions (--think seconds on average, default 3: a
  person reading the page; 50 sessions then ask for about 16 pages a second);
- --analysts BSSN analysts, signed in with password and TOTP, browsing the admin.

The sessions sign in first, as many at once as gunicorn has workers (a password hash
costs hundreds of milliseconds on purpose); their figures are printed apart, and the
measured window opens when all are in. Before that, one client alone measures
/healthz and the incident list: the baseline of the same run. It prints requests/s
and p50/p95/p99 per page and the error count, then verifies the audit chain and the
consent ledger (manage.py verify_audit, verify_ledger). The bar (issue 13): no error,
p95 under 500 ms on every page. Exit status 1 when the bar or a verification fails.
"""

import argparse
import base64
import os
import random
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATABASE_URL = os.environ.get(
    "BENCH_LOAD_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_bench_load"
)
REDIS_URL = os.environ.get("BENCH_LOAD_REDIS_URL", "redis://127.0.0.1:6379/1")
PASSWORD = secrets.token_urlsafe(18)  # the seeded accounts' password, fresh each run
P95_TARGET_MS = 500.0
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


from benchdb import recreate_database  # noqa: E402  (bench/ is on the path when run as a script)


def server_environment(workdir: Path) -> dict[str, str]:
    """Return the environment of a production-like server on 127.0.0.1 (plain HTTP, fresh keys)."""
    from cryptography.fernet import Fernet

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DJANGO_ENV_FILE": os.devnull,
            "DJANGO_DEBUG": "false",
            "SECRET_KEY": "bench-" + Fernet.generate_key().decode(),
            "FERNET_KEYS": Fernet.generate_key().decode(),
            "BLIND_INDEX_KEY": Fernet.generate_key().decode(),
            "DATABASE_URL": DATABASE_URL,
            "CELERY_BROKER_URL": REDIS_URL,
            "ALLOWED_HOSTS": "127.0.0.1",
            "SITE_URL": "http://127.0.0.1",
            # Plain HTTP on the loopback: no TLS proxy in front of this server.
            "SECURE_SSL_REDIRECT": "false",
            "SECURE_COOKIES": "false",
            "SECURE_HSTS_SECONDS": "0",
            "STATIC_ROOT": str(workdir / "static"),
            "PRIVATE_STORAGE_ROOT": str(workdir / "private"),
            "MEDIA_ROOT": str(workdir / "media"),
            "EMAIL_URL": f"filemail://{workdir / 'mail'}",
            # The run's own checkpoint key and store: a store left by another run (other
            # keys, other operators under the same ids) would fail verify_ledger afterwards.
            "CHECKPOINT_SIGNING_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "CHECKPOINT_STORE_DIR": str(workdir / "checkpoints"),
            "LOG_LEVEL": "WARNING",
            "AXES_FAILURE_LIMIT": "1000",  # every session signs in from 127.0.0.1
        }
    )
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )


def seed(env: dict[str, str], *, operators: int, analysts: int) -> dict:
    """Create organisations, reporters, analysts with TOTP devices and some incidents; return logins."""
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group
    from django.db import connections
    from django.utils import timezone
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from incidents import services as incident_services
    from portal.accounts.models import Membership, Operator, Role, Sector, User
    from portal.accounts.staff import ANALYST

    organisations = max(1, operators // 5)
    password = make_password(PASSWORD)  # hashed once: seeding is not what is measured
    logins: dict = {"operators": [], "analysts": []}
    now = timezone.now()
    for n in range(organisations):
        operator = Operator.objects.create(
            slug=f"load{n}",
            name=f"PT Load {n}",
            sector=Sector.ECOMMERCE,
            contact_email=f"sec@load{n}.example",
        )
        members = []
        for m in range(operators // organisations + (1 if n < operators % organisations else 0)):
            user = User.objects.create(
                email=f"reporter{m}@load{n}.example", full_name=f"Reporter {m}", password=password
            )
            Membership.objects.create(
                user=user, operator=operator, role=Role.ADMIN if m == 0 else Role.REPORTER
            )
            members.append(user)
            logins["operators"].append((user.email, operator.slug, m == 0))
        for i in range(3):
            data = incident_content(now, title=f"Seeded incident {i}")
            incident = incident_services.create_incident(operator=operator, actor=members[0], data=data)
            incident_services.submit_incident(incident=incident, actor=members[0])
    group = Group.objects.get(name=ANALYST)
    for n in range(analysts):
        user = User.objects.create(
            email=f"analyst{n}@bssn.example", full_name=f"Analyst {n}", password=password, is_staff=True
        )
        user.groups.add(group)
        device = TOTPDevice.objects.create(user=user, name="load", confirmed=True)
        logins["analysts"].append((user.email, device.key, device.step, device.t0, device.digits))
    connections.close_all()
    return logins


def incident_content(now, **overrides) -> dict:
    data = {
        "title": "Load-test incident",
        "category": "ransomware",
        "severity": "medium",
        "tlp": "amber",
        "reporter_name": "Load Reporter",
        "reporter_email": "reporter@load.example",
        "reporter_phone": "+62 21 555 0101",
        "description": "Generated by bench/bench_load.py.",
        "chronology": "Detected during a load test.",
        "impact_confidentiality": "low",
        "impact_integrity": "low",
        "impact_availability": "low",
        "affected_systems": "bench-01",
        "affected_services": "Invoicing",
        "users_affected": 10,
        "occurred_at": now - timedelta(hours=5),
        "detected_at": now - timedelta(hours=4),
        "aware_at": now - timedelta(hours=3),
        "personal_data_involved": False,
        "personal_data_categories": [],
        "specific_data_categories": [],
        "data_subjects_count": None,
        "actions_taken": "None yet.",
        "technical_contact_name": "",
        "technical_contact_email": "",
        "technical_contact_phone": "",
    }
    data.update(overrides)
    return data


def incident_form(n: int) -> dict:
    """The incident form as a browser posts it (times as datetime-local text)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M", time.localtime(time.time() - 3 * 3600))
    return {
        "title": f"Load-test incident {n}",
        "category": "ransomware",
        "severity": "medium",
        "tlp": "amber",
        "reporter_name": "Load Reporter",
        "reporter_email": "reporter@load.example",
        "reporter_phone": "+62 21 555 0101",
        "description": "Generated by bench/bench_load.py.",
        "chronology": "Detected during a load test.",
        "impact_confidentiality": "low",
        "impact_integrity": "low",
        "impact_availability": "low",
        "affected_systems": "bench-01",
        "affected_services": "Invoicing",
        "users_affected": "10",
        "occurred_at": stamp,
        "detected_at": stamp,
        "aware_at": stamp,
        "actions_taken": "None yet.",
        "action": "submit",
    }


class Recorder:
    """Latencies and errors per page label, shared by every session thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)

    def call(
        self, label: str, session: requests.Session, method: str, url: str, *, ok=(200,), timeout=30, **kwargs
    ):
        started = time.perf_counter()
        try:
            response = session.request(method, url, timeout=timeout, allow_redirects=False, **kwargs)
            error = None if response.status_code in ok else f"HTTP {response.status_code}"
        except requests.RequestException as exc:
            response, error = None, type(exc).__name__
        elapsed = time.perf_counter() - started
        with self.lock:
            self.times[label].append(elapsed)
            if error:
                self.errors[label].append(error)
        return response


class Window:
    """The measured window: it opens once every session has signed in, for `duration` seconds.

    Signing in hashes a password on purpose (hundreds of milliseconds of CPU each);
    fifty at once are the start of the test, not its steady state, so they are
    measured apart and kept out of the window.
    """

    def __init__(self, sessions: int, duration: float, signing_in_at_once: int) -> None:
        self.duration = duration
        # As many sign-ins at once as the server has workers: fifty password hashes at
        # the same instant only measure a queue (and hit gunicorn's 30 s worker timeout).
        self.signing_in = threading.BoundedSemaphore(signing_in_at_once)
        self.until = 0.0
        self.started = 0.0
        self.barrier = threading.Barrier(sessions + 1, action=self._open)

    def _open(self) -> None:
        self.started = time.monotonic()
        self.until = self.started + self.duration

    def wait(self) -> None:
        self.barrier.wait(timeout=900)


def csrf(session: requests.Session) -> str:
    return session.cookies.get("csrftoken", "")


def operator_session(
    base: str, login: tuple, signin: Recorder, rec: Recorder, window: Window, think: float, seed_n: int
):
    email, slug, is_admin = login
    rnd = random.Random(seed_n)  # noqa: S311 - picks pages, not secrets
    s = requests.Session()
    with window.signing_in:
        signin.call("GET /login/", s, "GET", f"{base}/login/")
        signin.call(
            "POST /login/ (operator)",
            s,
            "POST",
            f"{base}/login/",
            ok=(302,),
            timeout=120,
            data={"username": email, "password": PASSWORD, "csrfmiddlewaretoken": csrf(s)},
        )
    org = f"{base}/o/{slug}"
    references: list[str] = []
    filed = 0
    window.wait()
    while time.monotonic() < window.until:
        action = rnd.choices(
            ["list", "dashboard", "detail", "file", "evidence", "alerts", "activity", "consent"],
            weights=[25, 10, 20, 12, 10, 8, 8 if is_admin else 0, 7],  # the activity log is for admins
        )[0]
        if action == "list" or (action in ("detail", "evidence") and not references):
            response = rec.call("GET incident list", s, "GET", f"{org}/incidents/")
            if response is not None and response.status_code == 200:
                references = sorted(set(re.findall(rf"/o/{slug}/incidents/([A-Z0-9-]+)/", response.text)))
        elif action == "dashboard":
            rec.call("GET dashboard", s, "GET", f"{org}/")
        elif action == "detail":
            rec.call("GET incident detail", s, "GET", f"{org}/incidents/{rnd.choice(references)}/")
        elif action == "file":
            rec.call("GET new incident form", s, "GET", f"{org}/incidents/new/")
            filed += 1
            response = rec.call(
                "POST new incident (submit)",
                s,
                "POST",
                f"{org}/incidents/new/",
                ok=(302,),
                data={**incident_form(filed), "csrfmiddlewaretoken": csrf(s)},
            )
            if response is not None and response.status_code == 302:
                match = re.search(r"/incidents/([A-Z0-9-]+)/", response.headers.get("Location", ""))
                if match:
                    references.append(match[1])
        elif action == "evidence":
            reference = rnd.choice(references)
            rec.call(
                "POST evidence upload",
                s,
                "POST",
                f"{org}/incidents/{reference}/evidence/",
                ok=(302,),
                data={"description": "log excerpt", "csrfmiddlewaretoken": csrf(s)},
                files={"file": ("report.pdf", PDF, "application/pdf")},
            )
        elif action == "alerts":
            rec.call("GET alert list", s, "GET", f"{org}/alerts/")
        elif action == "activity":
            rec.call("GET activity log", s, "GET", f"{org}/activity/")
        else:
            rec.call("GET consent lookup", s, "GET", f"{org}/consent/")
        time.sleep(rnd.uniform(0, 2 * think))


def analyst_session(
    base: str, login: tuple, signin: Recorder, rec: Recorder, window: Window, think: float, seed_n: int
):
    from django_otp.oath import totp

    email, key, step, t0, digits = login
    rnd = random.Random(seed_n)  # noqa: S311 - picks pages, not secrets
    s = requests.Session()
    with window.signing_in:
        signin.call("GET /login/", s, "GET", f"{base}/login/")
        signin.call(
            "POST /login/ (analyst)",
            s,
            "POST",
            f"{base}/login/",
            ok=(302,),
            timeout=120,
            data={"username": email, "password": PASSWORD, "csrfmiddlewaretoken": csrf(s)},
        )
        code = f"{totp(bytes.fromhex(key), step=step, t0=t0, digits=digits):0{digits}d}"
        signin.call(
            "POST /login/verify/ (TOTP)",
            s,
            "POST",
            f"{base}/login/verify/",
            ok=(302,),
            timeout=120,
            data={"token": code, "csrfmiddlewaretoken": csrf(s)},
        )
    ids: list[str] = []
    window.wait()
    while time.monotonic() < window.until:
        action = rnd.choices(
            ["index", "incidents", "change", "deliveries", "compliance"], weights=[10, 35, 30, 15, 10]
        )[0]
        if action == "index":
            rec.call("GET admin index", s, "GET", f"{base}/admin/")
        elif action == "incidents" or (action == "change" and not ids):
            response = rec.call("GET admin incident list", s, "GET", f"{base}/admin/incidents/incident/")
            if response is not None and response.status_code == 200:
                ids = sorted(set(re.findall(r"/admin/incidents/incident/(\d+)/change/", response.text)))
        elif action == "change":
            rec.call(
                "GET admin incident page",
                s,
                "GET",
                f"{base}/admin/incidents/incident/{rnd.choice(ids)}/change/",
            )
        elif action == "deliveries":
            rec.call("GET admin delivery list", s, "GET", f"{base}/admin/alerts/delivery/")
        else:
            rec.call("GET admin compliance", s, "GET", f"{base}/admin/incidents/incident/compliance/")
        time.sleep(rnd.uniform(0, 2 * think))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def print_table(title: str, rec: Recorder, seconds: float) -> tuple[int, float]:
    print(f"\n{title}")
    print(f"{'page':34} {'requests':>8} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}")
    worst_p95, errors, total = 0.0, 0, 0
    for label in sorted(rec.times):
        times = rec.times[label]
        failed = len(rec.errors[label])
        p95 = percentile(times, 0.95)
        worst_p95 = max(worst_p95, p95)
        errors += failed
        total += len(times)
        print(
            f"{label:34} {len(times):8d} {len(times) / seconds:7.1f} {statistics.median(times) * 1000:8.0f} "
            f"{p95:8.0f} {percentile(times, 0.99):8.0f} {failed:7d}"
        )
    print(
        f"{'all pages':34} {total:8d} {total / seconds:7.1f} {'':8} {worst_p95:8.0f} "
        f"{'(worst)':>8} {errors:7d}"
    )
    for label, kinds in rec.errors.items():
        if kinds:
            print(f"  errors on {label}: {sorted(set(kinds))[:5]}")
    return errors, worst_p95


def wait_for(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise SystemExit(f"the server did not answer {url} in {seconds:.0f} s")


def empty_redis_database(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()  # the broker's queue of this run only (its own database number)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load (default 120)")
    parser.add_argument("--operators", type=int, default=50, help="concurrent operator sessions (default 50)")
    parser.add_argument(
        "--analysts", type=int, default=5, help="concurrent BSSN analysts in the admin (default 5)"
    )
    parser.add_argument(
        "--think", type=float, default=1.0, help="average pause between a session's actions, s"
    )
    parser.add_argument(
        "--workers", type=int, default=4, help="gunicorn workers (default 4, as in the README)"
    )
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--smoke", action="store_true", help="a short run: 15 s, 5 operators, 1 analyst")
    args = parser.parse_args()
    if args.smoke:
        args.duration, args.operators, args.analysts = 15.0, 5, 1
    args.duration = min(args.duration, 900.0)  # bounded in time, whatever is asked

    workdir = Path(tempfile.mkdtemp(prefix="portal-bench-load-"))
    env = server_environment(workdir)
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    recreate_database(DATABASE_URL)
    for command in (["migrate", "--no-input"], ["collectstatic", "--no-input"]):
        result = manage(env, *command)
        if result.returncode:
            print(result.stdout[-2000:], result.stderr[-2000:])
            return 1
    logins = seed(env, operators=args.operators, analysts=args.analysts)

    base = f"http://127.0.0.1:{args.port}"
    server = subprocess.Popen(  # noqa: S603 - our own gunicorn, on the loopback only
        [
            sys.executable,
            "-m",
            "gunicorn",
            "portal.wsgi",
            "--bind",
            f"127.0.0.1:{args.port}",
            "--workers",
            str(args.workers),
            "--timeout",
            "30",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    failed = False
    try:
        wait_for(f"{base}/healthz", 60)
        baseline = Recorder()
        s = requests.Session()
        started = time.monotonic()
        for _ in range(40):
            baseline.call("GET /healthz (one client)", s, "GET", f"{base}/healthz")
        base_session = requests.Session()
        base_session.get(f"{base}/login/")
        base_session.post(
            f"{base}/login/",
            data={
                "username": logins["operators"][0][0],
                "password": PASSWORD,
                "csrfmiddlewaretoken": csrf(base_session),
            },
        )
        for _ in range(40):
            baseline.call(
                "GET incident list (one client)",
                base_session,
                "GET",
                f"{base}/o/{logins['operators'][0][1]}/incidents/",
            )
        print_table("Baseline: one client, no other load", baseline, time.monotonic() - started)

        rec, signin = Recorder(), Recorder()
        window = Window(len(logins["operators"]) + len(logins["analysts"]), args.duration, args.workers)
        threads = [
            threading.Thread(
                target=operator_session, args=(base, login, signin, rec, window, args.think, n), daemon=True
            )
            for n, login in enumerate(logins["operators"])
        ] + [
            threading.Thread(
                target=analyst_session,
                args=(base, login, signin, rec, window, args.think, 1000 + n),
                daemon=True,
            )
            for n, login in enumerate(logins["analysts"])
        ]
        signing_in = time.monotonic()
        for thread in threads:
            thread.start()
        window.wait()
        print_table(
            "Sign-in of every session at once (password hashing on purpose; not in the window or the bar)",
            signin,
            time.monotonic() - signing_in,
        )
        for thread in threads:
            thread.join(timeout=args.duration + 60)
        seconds = time.monotonic() - window.started
        errors, worst_p95 = print_table(
            f"Load: {args.operators} operator sessions + {args.analysts} analysts for {args.duration:.0f} s "
            f"(gunicorn, {args.workers} workers, DEBUG off, PostgreSQL, Redis broker)",
            rec,
            seconds,
        )
        errors += sum(len(kinds) for kinds in signin.errors.values())
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        verdict = errors == 0 and worst_p95 < P95_TARGET_MS
        print(
            f"bar: 0 errors and p95 < {P95_TARGET_MS:.0f} ms on every page -> "
            f"{'met' if verdict else 'NOT met'} ({errors} errors, worst p95 {worst_p95:.0f} ms)"
        )
        failed = not verdict
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    for command in ("verify_audit", "verify_ledger"):
        result = manage(env, command)
        print(
            f"manage.py {command}: exit {result.returncode}: {(result.stdout + result.stderr).strip()[-400:]}"
        )
        failed = failed or result.returncode != 0
    empty_redis_database(REDIS_URL)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
