#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys

# Commands that read no secret and touch no personal data: in a bare checkout (no .env,
# no keys in the environment) they run with throwaway keys instead of stopping at the
# missing SECRET_KEY. Everything else still needs the real keys.
KEYLESS_COMMANDS = {
    "help",
    "makemigrations",
    "showmigrations",
    "sqlmigrate",
    "makemessages",
    "compilemessages",
}
KEYS = ("SECRET_KEY", "FERNET_KEYS", "BLIND_INDEX_KEY")


def _throwaway_keys() -> None:
    from cryptography.fernet import Fernet

    for name in KEYS:
        os.environ.setdefault(name, Fernet.generate_key().decode())


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    if len(sys.argv) > 1 and sys.argv[1] in KEYLESS_COMMANDS:
        _throwaway_keys()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
