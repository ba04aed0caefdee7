"""System checks of the checkpoint settings (docs/decisions/0006-signed-checkpoints.md)."""

from django.conf import settings
from django.core.checks import Error, Warning, register

from portal.transparency import load_public_key, load_signing_key


@register(deploy=True)
def checkpoint_keys_check(app_configs=None, **kwargs) -> list:
    """Warn when nothing would sign checkpoints; refuse keys that cannot be read."""
    problems = []
    if not settings.CHECKPOINT_SIGNING_KEY:
        problems.append(
            Warning(
                "CHECKPOINT_SIGNING_KEY is not set: the consent ledgers and the audit log get no signed "
                "checkpoints, so a rewrite by a database superuser goes unnoticed.",
                hint="See .env.example for how to generate one.",
                id="audit.W001",
            )
        )
    else:
        try:
            load_signing_key(settings.CHECKPOINT_SIGNING_KEY)
        except ValueError as exc:
            problems.append(Error(f"CHECKPOINT_SIGNING_KEY: {exc}", id="audit.E001"))
    for value in settings.CHECKPOINT_VERIFY_KEYS:
        try:
            load_public_key(value)
        except ValueError as exc:
            problems.append(Error(f"CHECKPOINT_VERIFY_KEYS: {exc}", id="audit.E002"))
    return problems
