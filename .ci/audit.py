#!/usr/bin/env python3
"""Check the locked dependency versions against known vulnerabilities (pip-audit).

Run by `make audit` and by CI. A finding fails the run unless it is listed in
.ci/vulnerability-allowlist.toml with a reason and an expiry date that has not
passed. When the vulnerability service cannot be reached, or cannot audit some
packages, this says so plainly and names them: an unaudited package is not a clean one.
Exit codes: 0 clean (or only allowed findings), 1 a finding, 3 nothing could be audited
and AUDIT_REQUIRE_SERVICE=true.
"""

import datetime
import json
import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALLOWLIST = ROOT / ".ci" / "vulnerability-allowlist.toml"
LOCKS = [ROOT / "requirements.lock", ROOT / "requirements-dev.lock"]


def allowed(today: datetime.date) -> tuple[dict[str, dict], list[str]]:
    """Return the allowlist entries still in force, and the messages about expired or bad ones."""
    entries, notes = {}, []
    data = tomllib.loads(ALLOWLIST.read_text()) if ALLOWLIST.exists() else {}
    for entry in data.get("allow", []):
        vuln, reason, expires = entry.get("id"), entry.get("reason"), entry.get("expires")
        if not (vuln and reason and isinstance(expires, datetime.date)):
            notes.append(f"allowlist entry {entry!r} needs id, reason and expires (a date): ignored")
        elif expires < today:
            notes.append(f"allowlist entry {vuln} expired on {expires}: it no longer excuses the finding")
        else:
            entries[vuln] = entry
    return entries, notes


def audit(lock: Path) -> dict:
    """Return pip-audit's JSON report of `lock` (hashes required, nothing installed)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        proc = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            [
                sys.executable,
                "-m",
                "pip_audit",
                "--require-hashes",
                "--disable-pip",
                "--progress-spinner=off",
                "-r",
                str(lock),
                "--format",
                "json",
                "-o",
                out.name,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        try:
            return json.loads(Path(out.name).read_text() or "{}")
        except json.JSONDecodeError:
            return {"error": (proc.stderr or proc.stdout).strip()[-500:]}


def main() -> int:
    today = datetime.datetime.now(tz=datetime.UTC).date()
    allow, notes = allowed(today)
    for note in notes:
        print(f"audit: {note}")
    findings, skipped, audited = [], set(), set()
    for lock in LOCKS:
        result = audit(lock)
        if "error" in result:
            print(f"audit: the vulnerability service could not be reached for {lock.name}: {result['error']}")
            continue
        for dep in result.get("dependencies", []):
            if dep.get("skip_reason"):
                skipped.add(dep["name"])
                continue
            audited.add(dep["name"])
            for vuln in dep.get("vulns", []):
                ids = [vuln["id"], *vuln.get("aliases", [])]
                excuse = next((allow[i] for i in ids if i in allow), None)
                findings.append((dep["name"], dep.get("version"), vuln["id"], excuse))
    skipped -= audited
    for name, version, vuln, excuse in findings:
        if excuse:
            print(f"audit: {name} {version}: {vuln} allowed until {excuse['expires']}: {excuse['reason']}")
        else:
            print(f"audit: {name} {version}: {vuln} — upgrade it, or allow it with a reason and an expiry")
    if skipped:
        print(
            f"audit: NOT AUDITED — the vulnerability service had no data for {len(skipped)} package(s) "
            f"({', '.join(sorted(skipped)[:8])}{', …' if len(skipped) > 8 else ''}); "
            "it is unreachable or does not know these releases from here. Run `make audit` where it can."
        )
    print(
        f"audit: {len(audited)} package(s) audited, {len(skipped)} not audited, "
        f"{sum(1 for f in findings if not f[3])} finding(s) not allowed."
    )
    if any(not excuse for *_, excuse in findings):
        return 1
    if not audited and os.environ.get("AUDIT_REQUIRE_SERVICE", "").lower() == "true":
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
