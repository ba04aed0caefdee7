"""Test overrides: fresh random keys each run, nothing read from a developer's .env.

Services (PostgreSQL, Redis) are used when DATABASE_URL / TEST_REDIS_URL are set;
otherwise SQLite and Celery's in-memory transport.
"""

import base64
import os

from cryptography.fernet import Fernet

os.environ.setdefault("DJANGO_ENV_FILE", os.devnull)  # a developer's .env never leaks in
os.environ.setdefault("SECRET_KEY", "test-" + Fernet.generate_key().decode())
os.environ.setdefault("FERNET_KEYS", Fernet.generate_key().decode())
os.environ.setdefault("BLIND_INDEX_KEY", Fernet.generate_key().decode())
os.environ.setdefault("CELERY_BROKER_URL", "memory://")
os.environ.setdefault("CHECKPOINT_SIGNING_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())
os.environ.setdefault("DATABASE_URL", "sqlite://:memory:")

from portal.settings import *  # noqa: E402,F403
from portal.settings import BASE_DIR, BROKER_TIMEOUT_OPTIONS  # noqa: E402

DEBUG = False
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = LANGUAGE_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
PRIVATE_STORAGE_ROOT = BASE_DIR / "var" / "test-private"
# The tests' Redis brokers (and the frozen-broker test) get production's timeouts.
CELERY_BROKER_TRANSPORT_OPTIONS: dict = dict(BROKER_TIMEOUT_OPTIONS)
CELERY_TASK_ALWAYS_EAGER = False
WEBHOOK_ALLOW_HTTP = True
WEBHOOK_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.0/8"]
# WhiteNoise warns about a missing STATIC_ROOT on every request otherwise.
(BASE_DIR / "var" / "staticfiles").mkdir(parents=True, exist_ok=True)
