"""Settings for the incident reporting portal, read from the environment.

Every variable is listed with a one-line comment in `.env.example`. Defaults are the
safe production choice; the embedded default (`make run`) writes a development `.env`
that relaxes what plain HTTP on 127.0.0.1 needs. Nothing here branches on "production".
"""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlparse

import environ
from django.utils.csp import CSP
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"  # embedded default's database, broker queue, mail and files

env = environ.Env()
# The development .env written by `make run`; DJANGO_ENV_FILE points elsewhere (or at
# /dev/null) to ignore it. Variables already in the environment always win.
environ.Env.read_env(os.environ.get("DJANGO_ENV_FILE", str(BASE_DIR / ".env")), overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")

# --- Personal-data encryption -------------------------------------------------
# Fernet keys for encrypted columns: first key encrypts, all keys decrypt.
# Never derived from SECRET_KEY (fernet_fields would fall back to it if unset).
FERNET_KEYS = env.list("FERNET_KEYS")
# Key for the keyed HMAC "blind indexes" used for exact lookups on encrypted values.
BLIND_INDEX_KEY = env.str("BLIND_INDEX_KEY")

INSTALLED_APPS = [
    "portal.admin_site.PortalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "portal.accounts",
    "portal.audit",
    "portal.alerts",
    "incidents",
    "incidents.cases",
    "consent",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "portal.api",
]

MIDDLEWARE = [
    "portal.proxies.ForwardedHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "portal.middleware.BadInputMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "portal.accounts.two_factor.TwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "portal.middleware.PrivateCacheMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.accounts.context_processors.memberships",
            ],
        },
    },
]

VAR_DIR.mkdir(exist_ok=True)
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # Lets the alert pipeline's hot statements be prepared once per connection
    # (portal/alerts/store.py asks for it; Django's own cursors bind on the client and
    # never prepare). Turn off behind a PgBouncer older than 1.21 in transaction mode.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
        5 if env.bool("DATABASE_PREPARED_STATEMENTS", default=True) else None
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:home"
LOGOUT_REDIRECT_URL = "accounts:login"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Lockout (django-axes): after AXES_FAILURE_LIMIT failures for one account, OR from one
# client address, OR for one account from one address, sign-in is refused for
# AXES_COOLOFF_MINUTES (for that account, that address, or that pair).
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address", ["username", "ip_address"]]
# The sign-in form posts `username` (the address typed); axes would look for `email`.
AXES_USERNAME_CALLABLE = "portal.accounts.lockout.attempted_account"
# The client address, behind TRUSTED_PROXY_COUNT proxies (portal/proxies.py).
AXES_CLIENT_IP_CALLABLE = "portal.proxies.axes_client_address"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_VERBOSE = False  # its log lines carry the typed address: personal data
# axes' own admin breaks on its delete action; unlock with `manage.py axes_reset_username`.
AXES_ENABLE_ADMIN = False
# Two-factor sign-in (django-otp): the issuer shown in authenticator apps.
OTP_TOTP_ISSUER = "Portal Insiden BSSN"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_RESET_TIMEOUT = 60 * 60 * 2
# How long an invitation link to join an organisation stays valid.
INVITATION_TTL_HOURS = env.int("INVITATION_TTL_HOURS", default=72)

# --- Internationalisation ----------------------------------------------------
LANGUAGE_CODE = "id"
LANGUAGES = [("id", _("Bahasa Indonesia")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Jakarta"
USE_I18N = True
USE_TZ = True

# --- Static and uploaded files -----------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=str(VAR_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Private files (evidence): outside any public root, served only by access-checked views.
PRIVATE_STORAGE_ROOT = env.path("PRIVATE_STORAGE_ROOT", default=str(VAR_DIR / "private"))
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(VAR_DIR / "media"))
MEDIA_URL = "/media/"
EVIDENCE_MAX_BYTES = env.int("EVIDENCE_MAX_BYTES", default=20 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- E-mail ------------------------------------------------------------------
# EMAIL_URL: smtp+tls://user:password@host:587, or filemail:// (files under var/mail),
# or consolemail://. Translated into Django 6.1's MAILERS setting.
_email = urlparse(env.str("EMAIL_URL", default="filemail://"))
if _email.scheme == "filemail":
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "OPTIONS": {"file_path": unquote(_email.path) or str(VAR_DIR / "mail")},
        }
    }
elif _email.scheme == "consolemail":
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}
else:
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": _email.hostname or "localhost",
                "port": _email.port or 25,
                "username": unquote(_email.username or ""),
                "password": unquote(_email.password or ""),
                "use_tls": _email.scheme == "smtp+tls",
                "use_ssl": _email.scheme in ("smtps", "smtp+ssl"),
                "timeout": 20,
            },
        }
    }
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Portal Insiden <portal@example.org>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Where BSSN receives portal notifications (new high-severity incidents, missed deadlines).
BSSN_NOTIFY_EMAILS = env.list("BSSN_NOTIFY_EMAILS", default=["csirt@bssn.example.org"])

# --- Celery ------------------------------------------------------------------
# Redis in production (redis://host:6379/0); the embedded default is Celery's
# filesystem transport under var/broker, which needs no server.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem"):
    for _folder in ("queue", "processed"):
        (VAR_DIR / "broker" / _folder).mkdir(parents=True, exist_ok=True)
# A frozen broker (stopped process, dead host behind a live TCP stack) must not hold a web
# request: every connect and command gives up after these seconds, and the outbox's
# sweeper publishes what could not be (docs/alerts.md).
BROKER_SOCKET_TIMEOUT = env.float("CELERY_BROKER_SOCKET_TIMEOUT", default=1.0)
BROKER_TIMEOUT_OPTIONS = {
    "socket_connect_timeout": BROKER_SOCKET_TIMEOUT,
    "socket_timeout": BROKER_SOCKET_TIMEOUT,
    "retry_on_timeout": False,
    "max_retries": 1,
}
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(VAR_DIR / "broker" / "queue"),
        "data_folder_out": str(VAR_DIR / "broker" / "queue"),
        "processed_folder": str(VAR_DIR / "broker" / "processed"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {"visibility_timeout": 3600, **BROKER_TIMEOUT_OPTIONS}
)
CELERY_BROKER_CONNECTION_TIMEOUT = BROKER_SOCKET_TIMEOUT
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None  # a worker keeps reconnecting; producers never retry (outbox)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# No result backend is used (every task ignores its result); if one is configured, the
# same bounds apply to it.
CELERY_REDIS_SOCKET_TIMEOUT = BROKER_SOCKET_TIMEOUT
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = BROKER_SOCKET_TIMEOUT
CELERY_REDIS_RETRY_ON_TIMEOUT = False
# Webhooks and e-mail have queues of their own, served by separate workers (Procfile.dev).
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fix-up closes every database connection before and after each task
# unless this is set, which costs a new PostgreSQL connection per task. With it set
# high, the fix-up leaves them open and portal/celery.py applies Django's own rules
# (CONN_MAX_AGE, CONN_HEALTH_CHECKS) around each task, as Django does per request.
CELERY_DB_REUSE_MAX = 1_000_000
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=120)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 10
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict = {}
# Seconds /healthz waits for the broker before declaring it down.
HEALTHZ_BROKER_TIMEOUT = env.float("HEALTHZ_BROKER_TIMEOUT", default=2.0)

# --- Security headers and cookies --------------------------------------------
# Reverse proxies in front of the portal. X-Forwarded-Proto/-For are believed only from
# a peer in TRUSTED_PROXY_NETWORKS (CIDRs); TRUSTED_PROXY_COUNT proxies append to
# X-Forwarded-For, and the client address is that many entries from its right end
# (0: no proxy, the client is REMOTE_ADDR). See portal/proxies.py.
TRUSTED_PROXY_NETWORKS = env.list("TRUSTED_PROXY_NETWORKS", default=["127.0.0.1/32", "::1/128"])
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# Load balancers probe /healthz over plain HTTP inside the network; a redirect would fail them.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=True) else None
)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=60 * 60 * 8)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
LANGUAGE_COOKIE_SECURE = SESSION_COOKIE_SECURE
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
# No inline script or style anywhere: templates load external files only.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# --- Webhooks (alert pipeline) -----------------------------------------------
# Allow plain-HTTP webhook URLs (development and tests only).
WEBHOOK_ALLOW_HTTP = env.bool("WEBHOOK_ALLOW_HTTP", default=False)
# Private/loopback addresses webhooks may reach anyway (CIDRs; tests and demo: 127.0.0.1/32).
WEBHOOK_ALLOWED_PRIVATE_NETWORKS = env.list("WEBHOOK_ALLOWED_PRIVATE_NETWORKS", default=[])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Per-app settings (each app keeps its own block) ---------------------------

# incidents
# Days after the initial report that the final report is due (seeds the "final report" deadline rule;
# a supervisor can change the rule afterwards in the admin).
INCIDENT_FINAL_REPORT_DAYS = env.int("INCIDENT_FINAL_REPORT_DAYS", default=30)
# Deadline reminders and overdue notices; a late or doubled run neither loses nor repeats one.
# Days evidence files are kept after their incident is closed (the record of them stays).
EVIDENCE_RETENTION_DAYS = env.int("EVIDENCE_RETENTION_DAYS", default=730)
CELERY_BEAT_SCHEDULE["incidents-purge-evidence"] = {
    "task": "incidents.tasks.purge_expired_evidence_task",
    "schedule": 6 * 3600,  # a late run only delays a purge
}
CELERY_BEAT_SCHEDULE["incidents-deadline-reminders"] = {
    "task": "incidents.tasks.send_deadline_reminders_task",
    "schedule": env.float("INCIDENT_REMINDER_INTERVAL_SECONDS", default=300.0),
}
# BSSN's dashboard: above this many reported incidents its panels read summary tables that
# beat refreshes every DASHBOARD_REFRESH_MINUTES (the page says how fresh); below, live.
DASHBOARD_LIVE_MAX_INCIDENTS = env.int("DASHBOARD_LIVE_MAX_INCIDENTS", default=20000)
DASHBOARD_REFRESH_MINUTES = env.int("DASHBOARD_REFRESH_MINUTES", default=10)
CELERY_BEAT_SCHEDULE["incidents-refresh-dashboard"] = {
    "task": "incidents.tasks.refresh_dashboard_task",
    "schedule": DASHBOARD_REFRESH_MINUTES * 60.0,
    # A run still queued when the next is due is dropped: the next one computes the same.
    "options": {"expires": DASHBOARD_REFRESH_MINUTES * 60.0},
}

# alerts
# Webhook timeouts in seconds: connecting, then waiting for the answer. Standard Webhooks
# asks receivers to answer within a few seconds (verify, store, answer 2xx, work later).
ALERTS_CONNECT_TIMEOUT = env.float("ALERTS_CONNECT_TIMEOUT", default=3.0)
ALERTS_READ_TIMEOUT = env.float("ALERTS_READ_TIMEOUT", default=5.0)
# Tries per delivery before it is dead; backoff doubles from BASE up to CAP seconds (with jitter).
ALERTS_MAX_ATTEMPTS = env.int("ALERTS_MAX_ATTEMPTS", default=15)
ALERTS_BACKOFF_BASE = env.float("ALERTS_BACKOFF_BASE", default=30.0)
ALERTS_BACKOFF_CAP = env.float("ALERTS_BACKOFF_CAP", default=6 * 3600.0)
# Longest Retry-After honoured, and longest retry held as a task countdown (longer: the sweeper).
ALERTS_RETRY_AFTER_CAP = env.float("ALERTS_RETRY_AFTER_CAP", default=24 * 3600.0)
ALERTS_MAX_COUNTDOWN = env.float("ALERTS_MAX_COUNTDOWN", default=300.0)
# Sweeper: runs every INTERVAL s; re-enqueues deliveries and notices pending GRACE s past due,
# frees those whose worker stopped renewing its LEASE (a worker renews every LEASE/4 s).
ALERTS_SWEEP_INTERVAL = env.float("ALERTS_SWEEP_INTERVAL", default=5.0)
ALERTS_PENDING_GRACE = env.float("ALERTS_PENDING_GRACE", default=10.0)
ALERTS_LEASE_SECONDS = env.float("ALERTS_LEASE_SECONDS", default=20.0)
# After a failed publish, a process leaves publishing to the sweeper for this many seconds.
ALERTS_PUBLISH_PAUSE = env.float("ALERTS_PUBLISH_PAUSE", default=5.0)
# At most this many sends (or batches) to one channel at a time, across all workers.
ALERTS_CHANNEL_CONCURRENCY = env.int("ALERTS_CHANNEL_CONCURRENCY", default=2)
# After a webhook goes through, the same task sends up to BATCH_SIZE - 1 more due alerts
# to that endpoint (one claim and one record for all), for at most BATCH_SECONDS.
ALERTS_BATCH_SIZE = env.int("ALERTS_BATCH_SIZE", default=20)
ALERTS_BATCH_SECONDS = env.float("ALERTS_BATCH_SECONDS", default=2.0)
# How long a rotated webhook secret keeps signing beside the new one.
ALERTS_SECRET_OVERLAP_HOURS = env.float("ALERTS_SECRET_OVERLAP_HOURS", default=24.0)
CELERY_BEAT_SCHEDULE["alerts-sweep-deliveries"] = {
    "task": "portal.alerts.tasks.sweep_deliveries_task",
    "schedule": ALERTS_SWEEP_INTERVAL,
}
# Days a sent e-mail to people (recipients, text) is kept before it is deleted.
NOTICE_RETENTION_DAYS = env.int("NOTICE_RETENTION_DAYS", default=30)
CELERY_BEAT_SCHEDULE["alerts-purge-sent-notices"] = {
    "task": "portal.alerts.tasks.purge_sent_notices_task",
    "schedule": 60 * 60,  # hourly: a late or missed run only delays the purge
}

# checkpoints of the consent ledgers and the audit log (docs/decisions/0006-signed-checkpoints.md)
# Ed25519 private key that signs checkpoints (URL-safe base64 of 32 bytes). Kept out of the
# database and apart from every other key; without it no checkpoint is made.
CHECKPOINT_SIGNING_KEY = env.str("CHECKPOINT_SIGNING_KEY", default="")
# Public keys of earlier signing keys, kept so checkpoints and receipts they signed still verify.
CHECKPOINT_VERIFY_KEYS = env.list("CHECKPOINT_VERIFY_KEYS", default=[])
# The checkpoint store: a directory outside PostgreSQL (mount it from another system).
CHECKPOINT_STORE_DIR = env.path("CHECKPOINT_STORE_DIR", default=str(VAR_DIR / "checkpoints"))
CHECKPOINT_INTERVAL_SECONDS = env.float("CHECKPOINT_INTERVAL_SECONDS", default=300.0)
CELERY_BEAT_SCHEDULE["consent-checkpoint-ledgers"] = {
    "task": "consent.tasks.checkpoint_ledgers_task",
    "schedule": CHECKPOINT_INTERVAL_SECONDS,  # a stream that did not grow gets no new checkpoint
}
CELERY_BEAT_SCHEDULE["audit-checkpoint-log"] = {
    "task": "portal.audit.tasks.checkpoint_audit_task",
    "schedule": CHECKPOINT_INTERVAL_SECONDS,
}

# consent
# (consent ledger settings and beat entries go here)
# Stop-processing reminders after a withdrawal (UU 27/2022 Pasal 40), on the same
# interval as the incidents' deadline reminders; late or doubled runs are safe.
CELERY_BEAT_SCHEDULE["consent-processing-stop-reminders"] = {
    "task": "consent.tasks.send_processing_stop_reminders_task",
    "schedule": env.float("INCIDENT_REMINDER_INTERVAL_SECONDS", default=300.0),
}

# suspected cases
# (suspected-case settings and beat entries go here)
# Days a flagged person's identity (name, phone, NIK) is kept; the flag itself stays.
IDENTITY_RETENTION_DAYS = env.int("IDENTITY_RETENTION_DAYS", default=90)
CELERY_BEAT_SCHEDULE["cases-purge-expired-identities"] = {
    "task": "incidents.cases.tasks.purge_expired_identities_task",
    "schedule": 60 * 60,  # hourly: a late or missed run only delays the purge by an hour
}

# api (docs/api.md, docs/decisions/0011-api-framework.md)
# Requests one API key may send, e.g. "600/min" (DRF rate syntax: N/sec|min|hour|day).
API_RATE_LIMIT = env.str("API_RATE_LIMIT", default="600/min")
# Where the rate-limit counters live. Every web process must see the same counts, so
# production sets CACHE_URL=redis://…; the default (one process's memory) suits `make run`.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
# Hours an Idempotency-Key's first response is kept for replay.
API_IDEMPOTENCY_HOURS = 24
CELERY_BEAT_SCHEDULE["api-purge-idempotent-requests"] = {
    "task": "portal.api.tasks.purge_idempotent_requests_task",
    "schedule": 3600,  # a late run only keeps a few responses longer
}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["portal.api.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["portal.api.permissions.HasScope"],
    "DEFAULT_THROTTLE_CLASSES": ["portal.api.throttling.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": API_RATE_LIMIT},
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "portal.api.problems.problem_exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_VERSIONING_CLASS": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "BSSN incident portal API",
    "DESCRIPTION": (
        "The machine API for operators' security tooling. Guide: docs/api.md. Errors are RFC 9457 "
        "problem details. The event payloads of the alert pipeline are JSON Schemas in the "
        "repository's docs/schemas/ (incident.submitted, incident.status_changed, …), not repeated here. "
        "The webhooks below go to an organisation's own endpoints, registered in the portal."
    ),
    # Import paths (settings are not the place to import app code): portal/api/webhooks_schema.py.
    "WEBHOOKS": [
        f"portal.api.webhooks_schema.{name}"
        for name in (
            "status_changed",
            "message",
            "information_requested",
            "deadline_reminder",
            "deadline_overdue",
        )
    ],
    "VERSION": "1.0.0",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ImpactEnum": "incidents.models.Impact",
        "SeverityEnum": "incidents.models.Severity",
    },
}
