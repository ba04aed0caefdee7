"""Benchmark: a fresh clone to the first page of `make run`, cold and warm.

    .venv/bin/python bench/bench_setup.py [--repo PATH] [--timeout 300]

Clones the repository (the committed HEAD) into a temporary directory twice and runs
the README's `make run` in each, on a free port, until the sign-in page answers 200:
- cold: empty uv and pip caches (every package comes from the registry);
- warm: the caches the cold run filled (a developer's second clone).
The target (issue 19) is under 60 s for the cold run when the registry has the
packages cached. Beside each total it prints how long the environment install took
(from make's own output), so a slow registry can be told apart from a slow start.
Both runs are measured in the same invocation; the load average is printed.
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_page(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=2) as response:  # noqa: S310
            return response.status == 200
    except OSError:
        return False


def run_once(repo: Path, work: Path, cache: Path, timeout: float) -> dict:
    clone = work / "clone"
    if clone.exists():
        shutil.rmtree(clone)
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "UV_CACHE_DIR": str(cache / "uv"),
        "PIP_CACHE_DIR": str(cache / "pip"),
        "DEMO_PASSWORD": "bench-only-password-1",
    }
    env.pop("DATABASE_URL", None)
    env.pop("VIRTUAL_ENV", None)
    log = (work / "make-run.log").open("w")
    started = time.monotonic()
    proc = subprocess.Popen(
        ["make", "run", f"PORT={port}"],
        cwd=clone,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    installed_at = None
    try:
        while time.monotonic() - started < timeout:
            if installed_at is None and (clone / ".venv" / ".installed").exists():
                installed_at = time.monotonic() - started
            if proc.poll() is not None:
                raise SystemExit(f"make run exited with {proc.returncode}; see {work / 'make-run.log'}")
            if first_page(port):
                return {"total": time.monotonic() - started, "install": installed_at}
            time.sleep(0.25)
        raise SystemExit(f"no first page within {timeout:.0f} s; see {work / 'make-run.log'}")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repo", type=Path, default=ROOT)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="bench-setup-") as tmp:
        work, cache = Path(tmp), Path(tmp) / "cache"
        results = {}
        for label in ("cold", "warm"):
            results[label] = run_once(args.repo, work, cache, args.timeout)
            r = results[label]
            install = f"{r['install']:.1f} s" if r["install"] is not None else "?"
            print(
                f"{label:5}  fresh clone → first page of make run: {r['total']:6.1f} s"
                f"  (environment installed after {install})"
            )
    cold = results["cold"]["total"]
    print(f"target: cold under {TARGET_S:.0f} s — {'met' if cold < TARGET_S else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
