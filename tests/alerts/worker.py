"""Start and stop a real Celery worker (with embedded beat) for the pipeline's integration tests."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]

# Short timings so every scenario finishes in seconds.
FAST = {
    "ALERTS_BACKOFF_BASE": "0.3",
    "ALERTS_BACKOFF_CAP": "1",
    "ALERTS_SWEEP_INTERVAL": "1",
    "ALERTS_PENDING_GRACE": "1",
    "ALERTS_LEASE_SECONDS": "3",
    "ALERTS_READ_TIMEOUT": "10",
    "ALERTS_CONNECT_TIMEOUT": "2",
}


def test_database_url() -> str:
    """Return a DATABASE_URL for the database this test session uses (pytest-django's test_<name>)."""
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def use_broker(url: str) -> None:
    """Point this (the test) process's Celery producer at `url`, with no publish pause left over."""
    from portal.alerts import outbox
    from portal.celery import app

    # The read and write URLs too: once read, they keep the broker the process started with,
    # and publishing would silently go there (the sweeper then hid it).
    app.conf.broker_url = app.conf.broker_write_url = app.conf.broker_read_url = url
    app._pool = None
    app.amqp._producer_pool = None
    outbox._broker_down_until = 0.0


# Every queue the portal publishes to (Procfile.dev starts a worker per group of them).
ALL_QUEUES = "celery,webhooks,email"


class Worker:
    """A Celery worker process reading `queues`; `pool` and `concurrency` as on the command line.

    By default one solo worker for every queue with embedded beat, as the scenarios need.
    """

    def __init__(
        self,
        broker_url: str,
        *,
        queues: str = ALL_QUEUES,
        pool: str = "solo",
        concurrency: int | str = 1,
        beat: bool = True,
        **env: str,
    ) -> None:
        self.broker_url = broker_url
        self.queues, self.pool, self.concurrency, self.beat = queues, pool, concurrency, beat
        self.extra_env = env
        self.tmp = Path(tempfile.mkdtemp(prefix="alerts-worker-"))
        self.log = self.tmp / "worker.log"
        self.mail_dir = self.tmp / "mail"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> "Worker":
        env = {
            **os.environ,
            **FAST,
            "DJANGO_SETTINGS_MODULE": "tests.alerts.worker_settings",
            "DATABASE_URL": test_database_url(),
            "CELERY_BROKER_URL": self.broker_url,
            "EMAIL_URL": f"filemail://{self.mail_dir}",
            "CONN_MAX_AGE": "0",
            "PYTHONPATH": str(ROOT),
            **self.extra_env,
        }
        offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "portal",
                    "worker",
                    "-P",
                    self.pool,
                    "-c",
                    str(self.concurrency),
                    "-Q",
                    self.queues,
                    *(["-B", "-s", str(self.tmp / "beat-schedule")] if self.beat else []),
                    "--loglevel=INFO",
                    "-n",
                    f"alerts-test-{os.getpid()}-{id(self)}@%h",
                    "--without-heartbeat",
                    "--without-gossip",
                    "--without-mingle",
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("worker exited:\n" + self.output())
            if " ready." in self.log.read_bytes()[offset:].decode(errors="replace"):
                return self
            time.sleep(0.1)
        raise RuntimeError("worker did not start:\n" + self.output())

    def kill(self) -> None:
        """SIGKILL the worker and its embedded beat: no clean-up, no acknowledgement."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def mails(self) -> list[str]:
        if not self.mail_dir.exists():
            return []
        return [p.read_text(errors="replace") for p in sorted(self.mail_dir.iterdir())]

    def cleanup(self) -> None:
        self.kill()  # the broker database is emptied before the next test; no need to wait
        shutil.rmtree(self.tmp, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThrowawayRedis:
    """A private redis-server (no persistence) that a test may stop and start again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "ThrowawayRedis":
        self.proc = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def freeze(self) -> None:
        """SIGSTOP the server: connections stay open and connects still succeed, nothing answers."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.thaw()
            self.proc.terminate()
            self.proc.wait(timeout=10)
