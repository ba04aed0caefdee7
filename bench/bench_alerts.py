"""Benchmark: 2,000 alerts through the real pipeline (Redis + Celery worker + DB) to a local receiver.

    .venv/bin/python bench/bench_alerts.py [--alerts 2000] [--rounds 3] [--concurrency 4] [--producers 4]

Prints throughput and p50/p95 commit-to-receipt latency, next to a baseline measured in
the same run: a bare Celery task that makes the same signed HTTP POST with no database
work. Baseline and pipeline alternate for --rounds rounds and the median round of each
is compared, because one round on a small machine varies by a fifth from the next. Each
row also shows where the CPU went, in milliseconds per alert (worker, producers,
PostgreSQL — the server processes of the bench's own database only —, Redis, receiver):
on a machine this size the processes share two cores, so throughput is CPU per alert
turned upside down, and the ratio of CPU per alert is the steadier figure on a machine
shared with other work. Before each round the alert tables are vacuumed and analysed,
as autovacuum does between bursts (a development server may run without it).

Producers are processes, as in production, where events are committed by the web
server's worker processes. Needs Redis (BENCH_REDIS_URL, default
redis://127.0.0.1:6379/14). The database is a fresh one of its own: PostgreSQL
`<name>_bench` when DATABASE_URL is PostgreSQL, else a SQLite file under var/.
Targets (issues 4 and 18): >= 250 deliveries/s, and >= 0.75 of the baseline. A last
round adds a second authority whose endpoint hangs (answers after 30 s, past the read
timeout) to every alert, and prints the first endpoint's throughput and p95 then.
"""

import argparse
import http.server
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings_test")
BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def _bench_database_url() -> str:
    base = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL", "")
    if base.startswith("postgres"):
        parsed = urlparse(base)
        return parsed._replace(path=parsed.path.rstrip("/") + "_bench").geturl()
    return f"sqlite:///{ROOT / 'var' / 'bench_alerts.sqlite3'}"


if __name__ == "__main__":
    os.environ["DATABASE_URL"] = _bench_database_url()
    os.environ["CELERY_BROKER_URL"] = BENCH_REDIS_URL
os.environ.setdefault("CELERY_BROKER_URL", BENCH_REDIS_URL)

import django  # noqa: E402

django.setup()

from portal.alerts import signing  # noqa: E402
from portal.alerts.transports import _session  # noqa: E402
from portal.celery import app  # noqa: E402


@app.task(name="bench.bare_post", acks_late=True, ignore_result=True)
def bare_post_task(url: str, msg_id: str, body: str, secret: str) -> None:
    """The baseline: the same signed POST over the same keep-alive session, no database."""
    data = body.encode()
    headers = signing.webhook_headers([secret], msg_id, data)
    response = _session().post(url, data=data, headers=headers, timeout=(5, 15), allow_redirects=False)
    response.raise_for_status()


def _receiver_main(secret: str, commands, answers) -> None:
    """Run the receiver in its own process, so it never waits for the producers' GIL."""
    first_seen: dict[str, float] = {}
    counts = {"requests": 0, "bad": 0}
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            now = time.time()
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                signing.verify(secret, headers, body)
                ok = True
            except signing.SignatureError:
                ok = False
            with lock:
                counts["requests"] += 1
                if ok:
                    first_seen.setdefault(headers["webhook-id"], now)
                else:
                    counts["bad"] += 1
            self.send_response(200 if ok else 401)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.request_queue_size = 128
    threading.Thread(target=server.serve_forever, daemon=True).start()
    answers.put(server.server_address[1])
    while True:
        command, arg = commands.get()
        with lock:
            if command == "missing":
                answers.put(len(arg - first_seen.keys()))
            elif command == "times":
                answers.put({i: first_seen[i] for i in arg if i in first_seen})
            elif command == "counts":
                answers.put(dict(counts))
            else:
                return


class Receiver:
    """The local webhook receiver (a separate process) that records when each webhook-id first arrived."""

    def __init__(self, secret: str) -> None:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        self.commands, self.answers = context.Queue(), context.Queue()
        self.process = context.Process(
            target=_receiver_main, args=(secret, self.commands, self.answers), daemon=True
        )
        self.process.start()
        self.port = self.answers.get(timeout=30)

    def ask(self, command: str, arg=None):
        self.commands.put((command, arg))
        return self.answers.get(timeout=60)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def wait_for(self, ids: set[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ask("missing", ids) == 0:
                return True
            time.sleep(0.2)
        return False

    def times(self, ids) -> dict[str, float]:
        return self.ask("times", set(ids))

    def stop(self) -> None:
        self.commands.put(("stop", None))
        self.process.join(timeout=10)


def redis_up() -> bool:
    parsed = urlparse(BENCH_REDIS_URL)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 6379), timeout=1):
            return True
    except OSError:
        return False


def prepare_database() -> None:
    from django.conf import settings
    from django.db import connection

    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("postgresql"):
        import psycopg

        admin = {
            k: v
            for k, v in {
                "host": db["HOST"],
                "port": db["PORT"],
                "user": db["USER"],
                "password": db["PASSWORD"],
            }.items()
            if v
        }
        with psycopg.connect(dbname="postgres", autocommit=True, **admin) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db["NAME"]}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{db["NAME"]}"')
    else:
        Path(db["NAME"]).unlink(missing_ok=True)
    connection.close()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def setup_routing():
    from datetime import timedelta

    from portal.accounts.models import Operator, Sector
    from portal.alerts.models import Authority, Channel, RoutingRule

    RoutingRule.objects.update(enabled=False)  # the bench's own database: only its receiver counts
    authority = Authority.objects.create(code="bench", name="Bench receiver")
    channel = Channel(authority=authority, kind="webhook", url="http://127.0.0.1:9/placeholder")
    secret = channel.rotate_secret(overlap=timedelta(0))
    channel.save()
    RoutingRule.objects.create(event_pattern="*", authority=authority)
    operator = Operator.objects.create(
        slug="bench", name="PT Bench", sector=Sector.ECOMMERCE, contact_email="security@bench.example"
    )
    return operator, channel, secret


def start_worker(concurrency: int, prefetch: int, pool: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CONN_MAX_AGE": "600"}
    command = [sys.executable, "-m", "celery", "-A", "portal", "worker", "-P", pool, "-c", str(concurrency)]
    command += ["--prefetch-multiplier", str(prefetch), "-I", "bench.bench_alerts", "--loglevel=WARNING"]
    command += ["-Q", "celery,webhooks,email"]
    command += ["-n", f"bench-alerts-{os.getpid()}@%h", "--without-heartbeat", "--without-gossip"]
    command += ["--without-mingle"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    # Ready when a ping task round-trips through the broker.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("worker exited:\n" + log.read_text())
        try:
            if app.control.ping(timeout=0.5):
                return proc
        except Exception:  # noqa: S110  not up yet
            pass
        time.sleep(0.3)
    raise SystemExit("worker did not start")


def _hanging_main(port_queue) -> None:
    """An endpoint that hangs: it reads the request and answers only after 30 s."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("content-length", 0)))
            time.sleep(30)
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_queue.put(server.server_address[1])
    server.serve_forever()


def add_hanging_authority():
    """Route every alert also to a second authority whose endpoint hangs; return its process."""
    import multiprocessing
    from datetime import timedelta

    from portal.alerts.models import Authority, Channel, RoutingRule

    context = multiprocessing.get_context("fork")
    ports = context.Queue()
    process = context.Process(target=_hanging_main, args=(ports,), daemon=True)
    process.start()
    authority = Authority.objects.create(code="bench-hanging", name="Bench hanging receiver")
    channel = Channel(
        authority=authority, kind="webhook", url=f"http://127.0.0.1:{ports.get(timeout=30)}/hook"
    )
    channel.rotate_secret(overlap=timedelta(0))
    channel.save()
    RoutingRule.objects.create(event_pattern="*", authority=authority)
    return process


def summarise(name: str, sent_at: dict[str, float], receiver: Receiver, cpu: dict[str, float]) -> dict:
    received = receiver.times(sent_at)
    latencies = sorted((received[i] - t) * 1000 for i, t in sent_at.items())
    first, last = min(sent_at.values()), max(received.values())
    q = statistics.quantiles(latencies, n=100)
    return {
        "name": name,
        "n": len(latencies),
        "throughput": len(latencies) / (last - first),
        "p50": q[49],
        "p95": q[94],
        "elapsed": last - first,
        "cpu": {group: ms / len(latencies) for group, ms in cpu.items()},
    }


# --- Producers: separate processes, like the web server's workers ---------------------------


def _bare_body(msg_id: str) -> str:
    import json

    return json.dumps(
        {
            "id": msg_id,
            "type": "incident.submitted",
            "timestamp": "",
            "data": {"schema": "incident.submitted/1", "incident": {"reference": "B"}},
        }
    )


def produce_bare(job: tuple[int, str, str]) -> dict[str, float]:
    """Publish `count` bare tasks; return {message id: publish time}."""
    import uuid

    count, url, secret = job
    sent_at = {}
    for _ in range(count):
        msg_id = f"msg_{uuid.uuid4().hex}"
        sent_at[msg_id] = time.time()
        bare_post_task.apply_async((url, msg_id, _bare_body(msg_id), secret))
    return sent_at


def produce_pipeline(job: tuple[int, int]) -> dict[str, float]:
    """Commit `count` events that each emit an alert; return {webhook id: commit time}."""
    from django.db import transaction

    from portal.accounts.models import Operator
    from portal.alerts.models import EventType
    from portal.alerts.services import emit_event

    count, operator_id = job
    operator = Operator.objects.get(pk=operator_id)
    sent_at = {}
    for i in range(count):
        stamp: list[float] = []
        with transaction.atomic():
            # Registered first, so it runs right after COMMIT and before the publish.
            transaction.on_commit(lambda stamp=stamp: stamp.append(time.time()))
            alert = emit_event(
                event_type=EventType.INCIDENT_SUBMITTED,
                operator=operator,
                payload={
                    "schema": "incident.submitted/1",
                    "incident": {"reference": f"INC-{i}", "severity": "high"},
                },
            )
        sent_at[alert.webhook_id] = stamp[0]
    return sent_at


def _shares(n: int, producers: int) -> list[int]:
    return [n // producers + (1 if i < n % producers else 0) for i in range(producers)]


# --- CPU accounting -------------------------------------------------------------------------


def _cpu_ticks(groups: dict[str, set[int]], database: str = "") -> dict[str, int]:
    """Return user+system clock ticks used so far by each group of processes (and by PostgreSQL, Redis).

    PostgreSQL counts the server processes connected to the bench's own `database`
    only (by their process title), so that other databases on a shared server do not
    show up in its column; its shared background processes (WAL writer, checkpointer)
    are left out.
    """
    ticks = dict.fromkeys([*groups, "postgres", "redis"], 0)
    backend = f" {database} ".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            command = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        used = int(fields[11]) + int(fields[12])
        pid, parent = int(entry), int(fields[1])
        group = next((g for g, pids in groups.items() if pid in pids or parent in pids), None)
        if group is None and command.startswith(b"postgres:") and (not database or backend in command):
            group = "postgres"
        elif group is None and b"redis-server" in command:
            group = "redis"
        if group is not None:
            ticks[group] += used
    return ticks


CPU_GROUPS = ("worker", "producers", "postgres", "redis", "receiver")


class CpuMeter:
    def __init__(self, groups: dict[str, set[int]]) -> None:
        self.groups = groups
        from django.conf import settings

        db = settings.DATABASES["default"]
        self.database = db["NAME"] if db["ENGINE"].endswith("postgresql") else ""

    def __enter__(self) -> "CpuMeter":
        self.start = _cpu_ticks(self.groups, self.database)
        return self

    def __exit__(self, *exc) -> None:
        end, hz = _cpu_ticks(self.groups, self.database), os.sysconf("SC_CLK_TCK")
        self.ms = {g: (end[g] - self.start.get(g, 0)) * 1000 / hz for g in end}


def run_baseline(n, receiver, secret, pool, producers, groups) -> dict:
    with CpuMeter(groups) as meter:
        sent_at: dict[str, float] = {}
        for part in pool.map(produce_bare, [(c, receiver.url, secret) for c in _shares(n, producers)]):
            sent_at.update(part)
        if not receiver.wait_for(set(sent_at), timeout=300):
            raise SystemExit("baseline: not every message arrived")
    return summarise("baseline: bare Celery task, same POST, no DB", sent_at, receiver, meter.ms)


def run_pipeline(n, receiver, operator, pool, producers, groups, name: str = "") -> dict:
    with CpuMeter(groups) as meter:
        sent_at: dict[str, float] = {}
        for part in pool.map(produce_pipeline, [(c, operator.pk) for c in _shares(n, producers)]):
            sent_at.update(part)
        if not receiver.wait_for(set(sent_at), timeout=300):
            raise SystemExit("pipeline: not every alert arrived")
    return summarise(
        name or "pipeline: emit_event -> outbox -> Redis -> worker -> webhook", sent_at, receiver, meter.ms
    )


def settle_tables() -> None:
    """VACUUM ANALYZE the alert tables before a round, as autovacuum does between bursts.

    A fresh database has no statistics, so PostgreSQL would plan the claim as if its
    tables were empty, and a server run with autovacuum off (as shared development
    machines often are) would also keep every dead row version of the earlier rounds
    in the outbox's indexes. Production runs autovacuum; the bench does its work here,
    outside the timed rounds.
    """
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    from portal.alerts.models import Alert, Attempt, Delivery

    with connection.cursor() as cursor:
        for model in (Alert, Delivery, Attempt):
            cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    connection.close()


def _wait_for_quiet(load: float, patience: float = 180) -> None:
    """Start on a quiet machine: on two cores a previous run's load skews the next one's figures."""
    deadline = time.monotonic() + patience
    while os.getloadavg()[0] > load and time.monotonic() < deadline:
        time.sleep(5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3, help="baseline and pipeline rounds, alternating")
    parser.add_argument("--concurrency", type=int, default=4, help="worker processes (prefork)")
    parser.add_argument("--producers", type=int, default=4, help="processes committing events")
    parser.add_argument("--prefetch", type=int, default=4, help="worker prefetch multiplier")
    parser.add_argument("--pool", default="prefork", choices=["prefork", "threads", "solo"])
    parser.add_argument(
        "--settle", type=float, default=1.0, help="wait (up to 3 min) for this 1-minute load average first"
    )
    parser.add_argument(
        "--no-hanging", dest="hanging", action="store_false", help="skip the round with a hanging endpoint"
    )
    args = parser.parse_args()
    _wait_for_quiet(args.settle)
    if not redis_up():
        print(f"bench_alerts: skipped, no Redis at {BENCH_REDIS_URL} (set BENCH_REDIS_URL)")
        return
    import multiprocessing

    import redis
    from django.conf import settings
    from django.db import connections

    from portal.alerts.models import Channel

    redis.Redis.from_url(BENCH_REDIS_URL).flushdb()
    prepare_database()
    db = settings.DATABASES["default"]
    load_at_start = os.getloadavg()[0]
    operator, channel, secret = setup_routing()
    receiver = Receiver(secret)
    Channel.objects.filter(pk=channel.pk).update(url=receiver.url)
    connections.close_all()  # the producers fork next; each opens its own connection
    pool = multiprocessing.get_context("fork").Pool(args.producers)
    log = Path(tempfile.mkdtemp(prefix="bench-alerts-")) / "worker.log"
    worker = start_worker(args.concurrency, args.prefetch, args.pool, log)
    groups = {
        "worker": {worker.pid},
        "producers": {p.pid for p in pool._pool},
        "receiver": {receiver.process.pid},
    }
    rounds: dict[str, list[dict]] = {"baseline": [], "pipeline": []}
    try:
        run_baseline(100, receiver, secret, pool, args.producers, groups)  # warm-up, not counted
        run_pipeline(100, receiver, operator, pool, args.producers, groups)
        for _ in range(args.rounds):
            settle_tables()
            rounds["baseline"].append(
                run_baseline(args.alerts, receiver, secret, pool, args.producers, groups)
            )
            settle_tables()
            rounds["pipeline"].append(
                run_pipeline(args.alerts, receiver, operator, pool, args.producers, groups)
            )
        if args.hanging:
            settle_tables()
            hanging = add_hanging_authority()
            groups["receiver"].add(hanging.pid)
            rounds["hanging"] = [
                run_pipeline(
                    args.alerts,
                    receiver,
                    operator,
                    pool,
                    args.producers,
                    groups,
                    name="pipeline, another authority's endpoint hanging",
                )
            ]
            hanging.terminate()
    finally:
        pool.terminate()
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
        counts = receiver.ask("counts")
        receiver.stop()
    from portal.alerts.models import Delivery, DeliveryStatus

    delivered = Delivery.objects.filter(status=DeliveryStatus.DELIVERED, channel=channel).count()
    expected = 100 + args.alerts * (args.rounds + (1 if args.hanging else 0))
    print(
        f"bench_alerts: {args.alerts} alerts x {args.rounds} rounds, worker {args.pool} x{args.concurrency} "
        f"prefetch x{args.prefetch}, {args.producers} producer processes, {os.cpu_count()} CPUs, "
        f"load average {load_at_start:.1f} at start and {os.getloadavg()[0]:.1f} at end, "
        f"database {db['ENGINE'].rsplit('.', 1)[-1]}, broker {BENCH_REDIS_URL}"
    )
    print(
        f"{'run (median round)':<62} {'deliveries/s':>12} {'p50 ms':>8} {'p95 ms':>8}  "
        "CPU ms per alert: worker producers postgres redis receiver = total"
    )
    median = {}
    for kind, results in rounds.items():
        row = median[kind] = sorted(results, key=lambda r: r["throughput"])[len(results) // 2]
        cpu = row["cpu"]
        print(
            f"{row['name']:<62} {row['throughput']:>12.0f} {row['p50']:>8.1f} {row['p95']:>8.1f}  "
            + " ".join(f"{cpu[g]:.2f}" for g in CPU_GROUPS)
            + f" = {sum(cpu[g] for g in CPU_GROUPS):.2f}"
        )
        print(f"{'  every round, deliveries/s':<62} " + ", ".join(f"{r['throughput']:.0f}" for r in results))
    ratio = median["pipeline"]["throughput"] / median["baseline"]["throughput"]
    cpu_ratio = sum(median["baseline"]["cpu"][g] for g in CPU_GROUPS) / sum(
        median["pipeline"]["cpu"][g] for g in CPU_GROUPS
    )
    print(
        f"pipeline / baseline throughput: {ratio:.2f} (target >= 0.75; baseline / pipeline CPU per alert: "
        f"{cpu_ratio:.2f}); pipeline target >= 250/s: "
        f"{'met' if median['pipeline']['throughput'] >= 250 else 'NOT met'}; "
        f"deliveries recorded delivered: {delivered} of {expected}; bad signatures: {counts['bad']}"
    )


if __name__ == "__main__":
    main()
