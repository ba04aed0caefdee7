"""Write a development `.env` with freshly generated keys, unless one exists.

Used by `make run`, so the embedded default needs no configuration and no key is
ever committed. Run as `python -m portal.devenv`.
"""

import base64
import secrets
import sys
from pathlib import Path

from cryptography.fernet import Fernet

BASE_DIR = Path(__file__).resolve().parent.parent

TEMPLATE = """\
# Development settings written by `make run` ({path}). Not for production; never commit.
DJANGO_DEBUG=true
SECRET_KEY={secret_key}
FERNET_KEYS={fernet_key}
BLIND_INDEX_KEY={blind_index_key}
CHECKPOINT_SIGNING_KEY={checkpoint_signing_key}
SECURE_SSL_REDIRECT=false
SECURE_COOKIES=false
SECURE_HSTS_SECONDS=0
BEHIND_TLS_PROXY=false
WEBHOOK_ALLOW_HTTP=true
WEBHOOK_ALLOWED_PRIVATE_NETWORKS=127.0.0.0/8
"""


def main() -> int:
    path = BASE_DIR / ".env"
    if path.exists():
        # A .env written before checkpoints existed gets its signing key added.
        text = path.read_text()
        if "CHECKPOINT_SIGNING_KEY=" not in text:
            key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
            path.write_text(text.rstrip("\n") + f"\nCHECKPOINT_SIGNING_KEY={key}\n")
        return 0
    path.write_text(
        TEMPLATE.format(
            path=path.name,
            secret_key=secrets.token_urlsafe(50),
            fernet_key=Fernet.generate_key().decode(),
            blind_index_key=secrets.token_urlsafe(32),
            checkpoint_signing_key=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        )
    )
    path.chmod(0o600)
    print(f"Wrote {path} with new development keys.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
