"""`.env.example` lists every environment variable the settings read, each with a comment."""

import re
from pathlib import Path

from django.conf import settings


def test_env_example_lists_every_variable_with_a_comment():
    base = Path(settings.BASE_DIR)
    source = (base / "portal" / "settings.py").read_text()
    read = set(re.findall(r'env\.[a-z]+\(\s*"([A-Z][A-Z0-9_]+)"', source))
    read |= set(re.findall(r'os\.environ\.get\(\s*"([A-Z][A-Z0-9_]+)"', source))
    lines = (base / ".env.example").read_text().splitlines()
    listed = {}
    for number, line in enumerate(lines):
        match = re.match(r"([A-Z][A-Z0-9_]+)=", line)
        if match:
            listed[match.group(1)] = lines[number - 1].startswith("#") if number else False
    assert sorted(read - set(listed)) == [], "missing from .env.example"
    assert sorted(name for name, commented in listed.items() if not commented) == [], "no comment line"
