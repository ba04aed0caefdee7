"""The browsable API reference: Swagger UI from vendored files, started by a static script.

drf-spectacular's own page starts Swagger UI with an inline script, which the
portal's Content-Security-Policy (no inline script) blocks; this page loads the
same vendored bundle and a small initialiser from /static/.
"""

from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET


@require_GET
def api_docs(request):
    return render(request, "api/docs.html", {"schema_url": reverse("api:schema")})
