"""Every operator-facing string has its Indonesian translation."""

from pathlib import Path

import polib
from django.conf import settings


def _catalogues() -> list[Path]:
    base = Path(settings.BASE_DIR)
    return [p for p in base.rglob("locale/id/LC_MESSAGES/django.po") if ".venv" not in p.parts]


def test_indonesian_catalogues_exist():
    assert _catalogues()


def test_every_message_has_an_indonesian_translation():
    missing = []
    for path in _catalogues():
        for entry in polib.pofile(str(path)):
            if entry.obsolete:
                continue
            if "fuzzy" in entry.flags or not (entry.msgstr or all(entry.msgstr_plural.values())):
                missing.append(f"{path.parent.parent.parent.parent.name}: {entry.msgid[:70]!r}")
    assert not missing, f"{len(missing)} untranslated:\n" + "\n".join(missing[:50])
