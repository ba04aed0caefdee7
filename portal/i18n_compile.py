"""Compile every .po file of the project into .mo, in pure Python (polib).

`make` runs this instead of `manage.py compilemessages` so a fresh machine needs no
GNU gettext. Run as `python -m portal.i18n_compile`.
"""

import sys
from pathlib import Path

import polib

BASE_DIR = Path(__file__).resolve().parent.parent
SKIP = {".venv", "var", "node_modules", ".git"}


def main() -> int:
    count = 0
    for po_path in sorted(BASE_DIR.rglob("locale/*/LC_MESSAGES/*.po")):
        if SKIP.intersection(po_path.relative_to(BASE_DIR).parts):
            continue
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        polib.pofile(str(po_path)).save_as_mofile(str(mo_path))
        count += 1
    print(f"Compiled {count} translation catalogue(s).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
