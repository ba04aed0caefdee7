"""A bare checkout (no .env, no keys) can check its migrations, and nothing that needs a key runs."""

import os
import subprocess
import sys

from django.conf import settings


def _manage(*args: str, tmp_path) -> subprocess.CompletedProcess:
    environment = {
        "PATH": os.environ["PATH"],
        "DJANGO_ENV_FILE": os.devnull,  # as if no `make run` had written a .env
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bare.sqlite3'}",
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_makemigrations_check_runs_without_keys(tmp_path):
    result = _manage("makemigrations", "--check", "--dry-run", tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout


def test_a_command_that_needs_the_keys_still_asks_for_them(tmp_path):
    result = _manage("check", tmp_path=tmp_path)
    assert result.returncode != 0
    assert "Set the SECRET_KEY environment variable" in result.stderr
