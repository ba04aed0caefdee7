"""How django-axes names the account a sign-in attempt was for."""

from django.http import HttpRequest

# django-axes stores the name in a 255-character column.
MAX_USERNAME = 255


def attempted_account(request: HttpRequest, credentials: dict | None = None) -> str | None:
    """Return the address typed into the sign-in form, normalised (AXES_USERNAME_CALLABLE).

    The form's field is `username` although accounts are keyed by e-mail; without this
    every failure was stored without an account and only addresses were ever locked.
    Case and surrounding spaces are dropped so "Ana@X.example " counts as ana@x.example.
    """
    typed = (credentials or {}).get("username")
    if typed is None and request is not None:
        typed = getattr(request, "POST", {}).get("username")
    if not typed:
        return None
    return str(typed).strip().lower()[:MAX_USERNAME] or None
