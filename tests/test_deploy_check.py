"""`manage.py check --deploy` is clean with production-like environment variables."""

import os
import subprocess
import sys

from cryptography.fernet import Fernet
from django.conf import settings

from portal.transparency import generate_signing_key


def test_check_deploy_prints_no_warnings(tmp_path):
    environment = {
        "PATH": os.environ["PATH"],
        "DJANGO_ENV_FILE": os.devnull,  # ignore a developer's .env
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "SECRET_KEY": Fernet.generate_key().decode() * 2,
        "FERNET_KEYS": Fernet.generate_key().decode(),
        "BLIND_INDEX_KEY": Fernet.generate_key().decode(),
        "CHECKPOINT_SIGNING_KEY": generate_signing_key(),
        "ALLOWED_HOSTS": "portal.example.org",
        "CSRF_TRUSTED_ORIGINS": "https://portal.example.org",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        "CACHE_URL": "redis://127.0.0.1:6379/2",
        "EMAIL_URL": "smtp+tls://portal:secret@smtp.example.org:587",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_deploy_check_warns_without_a_checkpoint_key_and_refuses_a_bad_one(settings):
    from portal.audit.checks import checkpoint_keys_check

    settings.CHECKPOINT_SIGNING_KEY = ""
    assert [p.id for p in checkpoint_keys_check()] == ["audit.W001"]
    settings.CHECKPOINT_SIGNING_KEY = "too-short"
    settings.CHECKPOINT_VERIFY_KEYS = ["also-bad"]
    assert [p.id for p in checkpoint_keys_check()] == ["audit.E001", "audit.E002"]


def test_the_deploy_check_warns_when_rate_limits_are_counted_per_process(settings):
    from portal.api.checks import shared_rate_limit_check

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert [p.id for p in shared_rate_limit_check()] == ["api.W001"]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "x"}}
    assert shared_rate_limit_check() == []
