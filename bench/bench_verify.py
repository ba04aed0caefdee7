"""Benchmark: verify a consent ledger of 1,000,000 events against its signed checkpoint.

Writes a valid chain of N events straight into PostgreSQL (COPY; the importer's own
speed is bench_consent.py's business), then prints, measured in the same run:

- baseline: the chain check as verify_ledger did it before checkpoints (ORM rows,
  canonical text built in Python, one SHA-256 per event);
- the first checkpoint over the whole ledger (Merkle root, signed, witnessed);
- verify_ledger as it is now: chain, head MAC, and the Merkle tree compared with the
  witnessed checkpoint and leaves. Target: under 30 s for 1,000,000 events.

Uses its own database, `portal_bench_verify` (dropped and re-created), and a
temporary checkpoint store.

    .venv/bin/python bench/bench_verify.py [--rows 1000000] [--pg postgres://postgres@127.0.0.1:5432]
"""

import argparse
import hashlib
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DB_NAME = "portal_bench_verify"
PURPOSES = ["marketing-email", "share-identity-health", "analytics"]
TARGET_VERIFY_S = 30.0
# Bounded: the generated ledger never exceeds this, whatever --rows says.
MAX_ROWS = 2_000_000


def _environment(pg: str, store: str) -> dict:
    import base64

    from cryptography.fernet import Fernet

    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DJANGO_DEBUG": "false",
            "DATABASE_URL": f"{pg}/{DB_NAME}",
            "SECRET_KEY": "bench-" + Fernet.generate_key().decode(),
            "FERNET_KEYS": Fernet.generate_key().decode(),
            "BLIND_INDEX_KEY": Fernet.generate_key().decode(),
            "CHECKPOINT_SIGNING_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "CHECKPOINT_STORE_DIR": store,
            "CELERY_BROKER_URL": "memory://",
            "SECURE_SSL_REDIRECT": "false",
            "CONN_MAX_AGE": "0",
        }
    )
    return env


def _recreate_database(pg: str) -> None:
    import psycopg

    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def _write_ledger(operator, version, rows: int) -> None:
    """COPY a valid chain of `rows` events for `operator` and set its head."""
    from django.db import connection, transaction

    from consent.ledger import lock_head, save_head
    from consent.models import GENESIS_HASH, ConsentEvent, canonical_json, epoch_micros

    fernet = ConsentEvent._meta.get_field("subject_identifier").fernet
    subjects = [f"cust-{i:06d}" for i in range(1000)]
    tokens = ["\\\\x" + fernet.encrypt(s.encode()).hex() for s in subjects]
    digests = [hashlib.sha256(s.encode()).hexdigest() for s in subjects]
    start = datetime(2025, 1, 1, tzinfo=UTC)
    recorded = datetime(2026, 1, 1, tzinfo=UTC)
    recorded_micros = str(epoch_micros(recorded))
    states = ["given", "given", "given", "refused", "withdrawn"]
    prev = GENESIS_HASH
    columns = (
        "record_id, operator_id, seq, subject_identifier, subject_index, subject_digest, purpose_code, "
        "policy_version_id, state, method, actor_type, recorded_by_id, event_at, recorded_at, expires_at, "
        "stop_processing_by, evidence, import_key, prev_hash, hash"
    )
    with connection.cursor() as outer:
        cursor = outer.cursor
        with cursor.copy(f"COPY consent_consentevent ({columns}) FROM STDIN") as copy:  # noqa: S608
            lines = []
            for seq in range(1, rows + 1):
                n = seq % 1000
                record_id = str(uuid.uuid4())
                state = states[seq % 5]
                event_at = start + timedelta(seconds=seq * 17)
                micros = epoch_micros(event_at)
                stop = str(micros + 72 * 3600 * 1_000_000) if state == "withdrawn" else ""
                evidence = canonical_json({"reference": f"ui-text-{seq % 40}"})
                canonical = "\x1f".join((
                    str(operator.pk), str(seq), record_id, digests[n], PURPOSES[seq % 3], str(version.pk),
                    state, "web_form", "subject", "", str(micros), recorded_micros, "", stop, evidence, "",
                ))  # fmt: skip
                digest = hashlib.sha256((prev + canonical).encode()).hexdigest()
                stop_at = (event_at + timedelta(hours=72)).isoformat() if stop else "\\N"
                lines.append("\t".join((
                    record_id, str(operator.pk), str(seq), tokens[n], digests[n], digests[n],
                    PURPOSES[seq % 3], str(version.pk), state, "web_form", "subject", "\\N",
                    event_at.isoformat(), recorded.isoformat(), "\\N", stop_at, evidence, "\\N", prev, digest,
                )))  # fmt: skip
                prev = digest
                if len(lines) >= 20000:
                    copy.write("\n".join(lines) + "\n")
                    lines = []
            if lines:
                copy.write("\n".join(lines) + "\n")
        with transaction.atomic():
            head = lock_head(operator)
            head.last_seq, head.last_hash = rows, prev
            save_head(head)
        outer.execute("ANALYZE consent_consentevent")


def _previous_verify(operator_id: int) -> tuple[float, int]:
    """The chain check as verify_ledger did it before checkpoints; return (seconds, events)."""
    from consent.models import CANONICAL_FIELDS, GENESIS_HASH, ConsentEvent, canonical_bytes, chain_hash

    started = time.perf_counter()
    rows = (
        ConsentEvent.objects.filter(operator_id=operator_id)
        .order_by("seq")
        .values_list(*CANONICAL_FIELDS, "prev_hash", "hash")
    )
    count, prev, n = len(CANONICAL_FIELDS), GENESIS_HASH, 0
    for row in rows.iterator(chunk_size=5000):
        values, stored_prev, stored = row[:count], row[count], row[count + 1]
        if stored_prev != prev or chain_hash(stored_prev, canonical_bytes(values)) != stored:
            raise SystemExit(f"the generated chain is broken at {values[1]}")
        prev, n = stored, n + 1
    return time.perf_counter() - started, n


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pg", default=os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--skip-baseline", action="store_true", help="Do not time the previous chain check.")
    args = parser.parse_args()
    rows = min(args.rows, MAX_ROWS)

    with tempfile.TemporaryDirectory() as store:
        env = _environment(args.pg, store)
        _recreate_database(args.pg)
        import subprocess

        manage = [sys.executable, str(BASE_DIR / "manage.py")]
        subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], env=env, check=True)
        os.environ.update(env)
        sys.path.insert(0, str(BASE_DIR))
        import django

        django.setup()
        from datetime import date

        from consent import ledger, services
        from consent.models import LegalBasis, Purpose
        from portal.accounts.models import Operator, Sector

        operator = Operator.objects.create(
            slug="bench", name="PT Bench", sector=Sector.ECOMMERCE, contact_email="bench@bench.example"
        )
        version = services.create_policy_version(
            operator=operator,
            actor=None,
            data={
                "title": "K",
                "text_id": "T.",
                "text_en": "",
                "effective_date": date(2025, 1, 1),
                "change_summary": "",
            },
        )
        for code in PURPOSES:
            Purpose.objects.create(
                version=version, code=code, description=code, legal_basis=LegalBasis.CONSENT,
                data_categories="name", retention="1 year",
            )  # fmt: skip
        services.publish_version(version=version, actor=None)

        print(f"Writing a chain of {rows:,} consent events ...", flush=True)
        t = time.perf_counter()
        _write_ledger(operator, version, rows)
        print(f"  written in {time.perf_counter() - t:.1f} s", flush=True)

        if args.skip_baseline:
            baseline_s = None
        else:
            baseline_s, counted = _previous_verify(operator.pk)
            assert counted == rows

        t = time.perf_counter()
        checkpoint = ledger.checkpoint_ledger(operator_id=operator.pk)
        checkpoint_s = time.perf_counter() - t

        t = time.perf_counter()
        breaks = list(ledger.verify_ledger(operator=operator))
        verify_s = time.perf_counter() - t

        # A checkpoint after 1,000 more events reads only those.
        from consent.models import CollectionMethod

        for i in range(10):
            services.record_consent(
                operator=operator, actor=None, subject_identifier=f"late-{i}", purpose_codes=PURPOSES,
                state="given", policy_version=version, method=CollectionMethod.API,
            )  # fmt: skip
        t = time.perf_counter()
        later = ledger.checkpoint_ledger(operator_id=operator.pk)
        incremental_s = time.perf_counter() - t

    print()
    print(f"ledger: {rows:,} events; checkpoint {checkpoint.number} root {checkpoint.root_hash[:16]}…")
    if baseline_s is not None:
        rate = rows / baseline_s
        print(f"baseline  chain check as before checkpoints : {baseline_s:>8.1f} s  ({rate:,.0f} events/s)")
    print(
        f"first checkpoint over the whole ledger      : {checkpoint_s:>8.1f} s  (Merkle root, signed, stored)"
    )
    print(
        f"next checkpoint after {later.size - checkpoint.size} more events         : "
        f"{incremental_s * 1000:>8.1f} ms (reads only the new events)"
    )
    verdict = "OK" if verify_s < TARGET_VERIFY_S * rows / 1_000_000 else "MISSED"
    print(
        f"verify_ledger: chain + head + witnessed tree : {verify_s:>8.1f} s  ({rows / verify_s:,.0f} ev/s)"
        f" target < {TARGET_VERIFY_S:.0f} s per 1,000,000: {verdict}; {breaks or 'intact'}"
    )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average (1, 5, 15 min) at the end      : {load}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
