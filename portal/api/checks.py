"""System check of where the API's rate-limit counters live (docs/api.md, rate limits)."""

from django.conf import settings
from django.core.checks import Warning, register

PROCESS_LOCAL = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


@register(deploy=True)
def shared_rate_limit_check(app_configs=None, **kwargs) -> list:
    """Warn when each web process would count a key's requests on its own."""
    if settings.CACHES["default"]["BACKEND"] not in PROCESS_LOCAL:
        return []
    return [
        Warning(
            "The cache is each process's own memory: with N web processes an API key gets N times "
            "API_RATE_LIMIT.",
            hint="Set CACHE_URL=redis://… (see .env.example).",
            id="api.W001",
        )
    ]
