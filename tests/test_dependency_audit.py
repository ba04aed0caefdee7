"""The dependency audit fails on a known vulnerability unless it is allowed, with a reason, until a date."""

import importlib.util
from pathlib import Path

import pytest
from django.conf import settings


@pytest.fixture
def audit(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("ci_audit", Path(settings.BASE_DIR) / ".ci" / "audit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "ALLOWLIST", tmp_path / "allowlist.toml")
    monkeypatch.setattr(module, "LOCKS", [tmp_path / "requirements.lock"])
    return module


def report(*vulns):
    return {
        "dependencies": [
            {"name": "somepkg", "version": "1.0", "vulns": [{"id": v, "aliases": []} for v in vulns]},
            {"name": "other", "skip_reason": "Dependency not found on PyPI and could not be audited"},
        ]
    }


def test_a_known_vulnerability_fails_the_audit(audit, monkeypatch, capsys):
    monkeypatch.setattr(audit, "audit", lambda lock: report("GHSA-1111"))
    assert audit.main() == 1
    out = capsys.readouterr().out
    assert "somepkg 1.0: GHSA-1111" in out
    assert "NOT AUDITED" in out and "other" in out


def test_an_allowed_vulnerability_with_a_future_expiry_passes(audit, monkeypatch, capsys):
    audit.ALLOWLIST.write_text(
        '[[allow]]\nid = "GHSA-1111"\nreason = "not reachable"\nexpires = 2999-01-01\n'
    )
    monkeypatch.setattr(audit, "audit", lambda lock: report("GHSA-1111"))
    assert audit.main() == 0
    assert "allowed until 2999-01-01: not reachable" in capsys.readouterr().out


def test_an_expired_allowance_no_longer_excuses_the_finding(audit, monkeypatch, capsys):
    audit.ALLOWLIST.write_text('[[allow]]\nid = "GHSA-1111"\nreason = "was fine"\nexpires = 2020-01-01\n')
    monkeypatch.setattr(audit, "audit", lambda lock: report("GHSA-1111"))
    assert audit.main() == 1
    assert "expired on 2020-01-01" in capsys.readouterr().out


def test_an_allowance_without_a_reason_is_ignored(audit, monkeypatch, capsys):
    audit.ALLOWLIST.write_text('[[allow]]\nid = "GHSA-1111"\nexpires = 2999-01-01\n')
    monkeypatch.setattr(audit, "audit", lambda lock: report("GHSA-1111"))
    assert audit.main() == 1


def test_an_unreachable_service_is_said_plainly(audit, monkeypatch, capsys):
    monkeypatch.setattr(audit, "audit", lambda lock: {"error": "connection refused"})
    assert audit.main() == 0
    assert "could not be reached" in capsys.readouterr().out
    monkeypatch.setenv("AUDIT_REQUIRE_SERVICE", "true")
    assert audit.main() == 3
