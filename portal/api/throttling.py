"""Rate limit per API key (settings.API_RATE_LIMIT); over it a 429 with Retry-After."""

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from .models import ApiKey


class ApiKeyRateThrottle(SimpleRateThrottle):
    scope = "api_key"

    def get_cache_key(self, request, view) -> str | None:
        if not isinstance(request.auth, ApiKey):
            return None  # refused by authentication anyway
        return f"throttle_api_key_{request.auth.pk}"

    def get_rate(self) -> str:
        # Read per request, not at import: settings are the environment's, tests override them.
        return settings.API_RATE_LIMIT
