"""Seed a national-scale dataset server-side: a million incidents in minutes on two cores.

Everything is INSERT … SELECT over generate_series on PostgreSQL, with explicit ids and
every "random" choice a hash of the row number (hashint8extended), so a run is
deterministic and can be extended: seeding 1,000 incidents and then 1,000,000 gives the
first 1,000 unchanged plus 999,000 more with the same distributions.

What it writes, and how it is spread (the shapes the dashboard and the lists read):
- 2,000 organisations: sectors e-commerce 35 %, fintech lending 20 %, fintech payment 15 %,
  healthtech 15 %, other 15 %; a third in DKI Jakarta, then Jawa Barat, Jawa Timur, Banten…,
  every province present; 5 % IIV. Organisation 1 (`bench-big`) is the large one the
  operator list is measured on: 5 % of all incidents.
- incidents over three years, more of them recently (density rising linearly to twice the
  average today); other organisations skewed (the top 20 file about a sixth); 1 % drafts;
  status by age (old ones closed, rejected or duplicates; the last weeks mostly open);
  categories and severities by realistic weights; 25 % with personal data.
- deadlines as the rules make them (final report for all, 72 h PDP notice with personal
  data, 24 h initial report for IIV), met on time, late, missed or waived.
- the status history: created (draft), submitted by the operator, BSSN's first step
  (time to triage: minutes to days, median about 6 h), the current status.
- observables, `avg` per incident (0 to 2×avg): about a sixth drawn from a pool of 50,000
  indicators with a heavy head (one phishing domain at hundreds of organisations), the
  rest unique; 30 % TLP:GREEN, 5 % CLEAR.
- suspected-case flags (one per four incidents) at healthtech organisations, onset dates
  in four epidemic waves, 3 % possible duplicates, 4 % withdrawn.
- alerts (one per submitted incident and per flag) and their deliveries (1.6 per alert:
  BSSN or the Ministry of Health, and the sector regulator or provincial health office),
  97.5 % delivered within seconds (a tail after retries), the rest dead.
"""

from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta

from django.db import connection

OPERATORS = 2000
BIG_SLUG = "bench-big"
SHARED_POOL = 50_000
BATCH = 250_000
SPAN_DAYS = 3 * 365

SECTORS = {
    "ecommerce": 35,
    "fintech_lending": 20,
    "fintech_payment": 15,
    "healthtech": 15,
    "other": 15,
}
# A third in Jakarta, then the large provinces; the rest share what is left.
PROVINCE_WEIGHTS = {
    "ID-JK": 34,
    "ID-JB": 12,
    "ID-JI": 9,
    "ID-BT": 6,
    "ID-JT": 6,
    "ID-SU": 4,
    "ID-YO": 3,
    "ID-BA": 3,
}
CATEGORIES = {
    "phishing": 25,
    "malware": 15,
    "ddos": 10,
    "defacement": 10,
    "unauthorised_access": 10,
    "data_leak": 10,
    "account_takeover": 8,
    "ransomware": 5,
    "data_alteration": 2,
    "other": 5,
}
SEVERITIES = {"low": 35, "medium": 35, "high": 22, "critical": 8}
OLD_STATUSES = {
    "closed": 84,
    "resolved": 6,
    "rejected": 5,
    "duplicate": 3,
    "in_progress": 1,
    "awaiting_operator": 1,
}
RECENT_STATUSES = {
    "closed": 45,
    "resolved": 20,
    "in_progress": 15,
    "awaiting_operator": 10,
    "triage": 5,
    "rejected": 3,
    "duplicate": 2,
}
NEW_STATUSES = {
    "submitted": 25,
    "triage": 25,
    "in_progress": 20,
    "awaiting_operator": 10,
    "resolved": 10,
    "closed": 10,
}
KINDS = {"domain": 30, "ipv4": 25, "url": 15, "sha256": 15, "md5": 5, "email": 5, "sha1": 3, "ipv6": 2}
TLPS = {"amber": 55, "green": 30, "clear": 5, "red": 5, "amber+strict": 5}
CLASSES = {"suspect_a": 70, "suspect_b": 18, "suspect_c": 12}
AGE_BANDS = {"0-4": 5, "5-17": 10, "18-29": 25, "30-44": 30, "45-59": 20, "60+": 10}


def _quote(value: str) -> str:
    assert "'" not in value  # our own constants only
    return f"'{value}'"


def pick(u: str, weights: dict[str, int]) -> str:
    """Return a SQL CASE choosing a key of `weights` by the uniform [0, 1) expression `u`."""
    total = sum(weights.values())
    running, parts = 0, []
    keys = list(weights)
    for key in keys[:-1]:
        running += weights[key]
        parts.append(f"WHEN {u} < {running / total:.6f} THEN {_quote(key)}")
    return f"(CASE {' '.join(parts)} ELSE {_quote(keys[-1])} END)"


def provinces() -> dict[str, float]:
    from portal.regions import Province

    rest = [p for p in Province.values if p not in PROVINCE_WEIGHTS]
    share = (100 - sum(PROVINCE_WEIGHTS.values())) / len(rest)
    return {**PROVINCE_WEIGHTS, **dict.fromkeys(rest, share)}


STEP_SECONDS: dict[str, float] = {}  # where seeding spent its time, by step


def _execute(sql: str, params=None) -> None:
    import inspect
    import time

    step = inspect.stack()[1].function
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    STEP_SECONDS[step] = STEP_SECONDS.get(step, 0) + time.perf_counter() - started


def _scalar(sql: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def _encrypted(model, field: str, value: str):
    """Return `value` as the encrypted column stores it (one ciphertext reused for every seeded row)."""
    return model._meta.get_field(field).get_db_prep_save(value, connection)


LOADED_TABLES = (
    "incidents_incident",
    "incidents_obligation",
    "incidents_statuschange",
    "incidents_observable",
    "cases_caseflag",
    "alerts_alert",
    "alerts_delivery",
)


@contextmanager
def indexes_built_after(tables=LOADED_TABLES):
    """Drop the secondary indexes and unique constraints of `tables`; build them again at the end.

    Far faster for a bulk load: one sort per index instead of a random insert per row.
    Primary keys stay. The rows are unique by construction, so the constraints come back.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
            FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
            WHERE t.relname = ANY(%s) AND c.contype = 'u'
            """,
            [list(tables)],
        )
        constraints = cursor.fetchall()
        cursor.execute(
            """
            SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
            FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
            WHERE t.relname = ANY(%s)
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
            """,
            [list(tables)],
        )
        indexes = cursor.fetchall()
    for table, name, _definition in constraints:
        _execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    for name, _definition in indexes:
        _execute(f"DROP INDEX {name}")
    try:
        yield
    finally:
        for table, name, definition in constraints:
            _execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
        for _name, definition in indexes:
            _execute(definition)


def prepare() -> None:
    """Create the hash helper and make the session fit for bulk loading."""
    _execute(
        """
        CREATE OR REPLACE FUNCTION bench_u(g bigint, k bigint) RETURNS float8
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $$ SELECT (hashint8extended(g, k) & 2147483647)::float8 / 2147483648.0 $$
        """
    )
    _execute("SET synchronous_commit = off")
    _execute("SET maintenance_work_mem = '256MB'")
    _execute("SET work_mem = '64MB'")
    # Rows are consistent by construction: skip the per-row foreign-key triggers (superuser only).
    _execute("SET session_replication_role = replica")


def finish() -> None:
    _execute("SET session_replication_role = DEFAULT")


def seed_operators() -> None:
    """Create the 2,000 organisations (once), organisation 1 being `bench-big`."""
    from portal.accounts.models import Operator

    if Operator.objects.filter(slug=BIG_SLUG).exists():
        return
    from portal.timefmt import zone_for_province

    province = pick("bench_u(g, 2)", provinces())
    zones = " ".join(
        f"WHEN {_quote(p)} THEN {_quote(zone_for_province(p))}"
        for p in provinces()
        if zone_for_province(p) != "Asia/Jakarta"
    )
    phone = _encrypted(Operator, "contact_phone", "")
    _execute(
        f"""
        INSERT INTO accounts_operator
            (id, name, slug, sector, pse_registration_number, is_iiv, timezone, province,
             contact_email, contact_phone, contact_phone_index, require_two_factor, created_at, address)
        SELECT g, 'PT Bench Organisation ' || lpad(g::text, 4, '0'),
               CASE WHEN g = 1 THEN %s ELSE 'bench-org-' || lpad(g::text, 4, '0') END,
               CASE WHEN g = 1 THEN 'ecommerce' ELSE {pick("bench_u(g, 1)", SECTORS)} END,
               '', g > 1 AND bench_u(g, 3) < 0.05, CASE p.province {zones} ELSE 'Asia/Jakarta' END,
               p.province, 'security@org-' || g || '.example', %s, '', false, %s, ''
        FROM generate_series(1, %s) AS g
        CROSS JOIN LATERAL (SELECT CASE WHEN g = 1 THEN 'ID-JK' ELSE {province} END AS province) AS p
        """,  # noqa: S608  (our own constants)
        [BIG_SLUG, phone, datetime.now(UTC) - timedelta(days=SPAN_DAYS + 30), OPERATORS],
    )
    _execute(
        "SELECT setval(pg_get_serial_sequence('accounts_operator', 'id'), "
        "(SELECT max(id) FROM accounts_operator))"
    )


def _batch_table(start: int, stop: int, now: datetime, reporter_id: int, analyst_id: int) -> None:
    """Build `seed_batch`: every derived fact of incidents start+1…stop (one row each)."""
    _execute("DROP TABLE IF EXISTS seed_batch")
    age = "((1 - sqrt(bench_u(g, 10))) * %(span)s)"  # days before now, density rising to today
    operator = (
        "CASE WHEN bench_u(g, 11) < 0.05 THEN 1 "
        f"ELSE 2 + floor(({OPERATORS} - 2) * power(bench_u(g, 12), 2.5))::int END"
    )
    status = (
        "CASE WHEN bench_u(g, 13) < 0.01 THEN 'draft' "
        f"WHEN a.age > 45 THEN {pick('bench_u(g, 14)', OLD_STATUSES)} "
        f"WHEN a.age > 7 THEN {pick('bench_u(g, 14)', RECENT_STATUSES)} "
        f"ELSE {pick('bench_u(g, 14)', NEW_STATUSES)} END"
    )
    _execute(
        f"""
        CREATE TEMP TABLE seed_batch AS
        SELECT g, g AS id, s.*,
               -- Time to triage: minutes to days (median about 6 h); to close: hours to months.
               least(s.submitted_at + make_interval(secs => 3600 * (0.25 + 48 * power(bench_u(g, 20), 3))),
                     %(now)s) AS triaged_at,
               bench_u(g, 22) AS u_final, bench_u(g, 23) AS u_pdp
        FROM generate_series(%(start)s::bigint + 1, %(stop)s::bigint) AS g
        CROSS JOIN LATERAL (
            SELECT {operator} AS operator_id,
                   %(now)s - make_interval(secs => 86400 * {age}) AS at,
                   {age} AS age
        ) AS a
        CROSS JOIN LATERAL (
            SELECT a.operator_id, {status} AS status,
                   a.at - make_interval(secs => 60 * (5 + 120 * bench_u(g, 15))) AS created_at,
                   a.at AS submitted_at,
                   a.at - make_interval(secs => 3600 * (1 + 47 * power(bench_u(g, 16), 2))) AS detected_at,
                   {pick("bench_u(g, 17)", CATEGORIES)} AS category,
                   {pick("bench_u(g, 18)", SEVERITIES)} AS severity,
                   bench_u(g, 19) < 0.25 AS personal
        ) AS s
        """,  # noqa: S608  (our own constants)
        {"span": SPAN_DAYS, "now": now, "start": start, "stop": stop},
    )
    # Closed some hours to months after BSSN's first step.
    _execute("ALTER TABLE seed_batch ADD COLUMN closed_at timestamptz")
    _execute(
        "UPDATE seed_batch SET closed_at = least(triaged_at + make_interval(secs => "
        "3600 * (4 + 1440 * power(bench_u(g, 21), 2.5))), %(now)s) "
        "WHERE status IN ('closed', 'rejected', 'duplicate')",
        {"now": now},
    )
    _execute("ALTER TABLE seed_batch ADD PRIMARY KEY (id)")
    # Deadlines, each with its outcome: (rule, due, remind_before, met_at, waived).
    _execute("DROP TABLE IF EXISTS seed_obligations")
    _execute(
        """
        CREATE TEMP TABLE seed_obligations AS
        SELECT b.id AS incident_id, r.id AS rule_id, o.due_at,
               o.due_at - make_interval(hours => r.remind_before_hours) AS remind_at,
               CASE WHEN o.waived THEN NULL WHEN o.met_at <= %(now)s THEN o.met_at END AS met_at,
               CASE WHEN o.waived THEN coalesce(b.closed_at, o.due_at) END AS waived_at,
               b.submitted_at
        FROM seed_batch b
        JOIN accounts_operator op ON op.id = b.operator_id
        CROSS JOIN LATERAL (VALUES
            -- The final report: met when the case was resolved or closed, mostly within 30 days.
            ('final-report', b.submitted_at + interval '720 hours',
             CASE WHEN b.status IN ('resolved', 'closed') THEN
                  b.submitted_at + make_interval(secs => 3600 * (24 + 900 * power(b.u_final, 1.5))) END,
             b.status IN ('rejected', 'duplicate'), true),
            -- The 72-hour PDP notice: most on time, some late, some never, a few waived.
            ('pdp-failure-notice', b.detected_at + interval '72 hours',
             CASE WHEN b.u_pdp < 0.75 THEN
                  b.detected_at + make_interval(secs => 3600 * 95 * power(b.u_pdp / 0.75, 1.5)) END,
             b.u_pdp >= 0.95, b.personal),
            -- IIV: the initial report within 24 hours of detection, met by submitting.
            ('iiv-initial-report', b.detected_at + interval '24 hours', b.submitted_at, false, op.is_iiv)
        ) AS o(code, due_at, met_at, waived, applies)
        JOIN incidents_deadlinerule r ON r.code = o.code
        WHERE o.applies AND b.status <> 'draft'
        """,
        {"now": now},
    )
    del reporter_id, analyst_id


def seed_incidents(
    total: int, *, now: datetime, reporter_id: int, analyst_id: int, observables_per: float
) -> None:
    """Add incidents (with deadlines, status history, observables and alerts) until there are `total`."""
    have = _scalar("SELECT coalesce(max(id), 0) FROM incidents_incident")
    for start in range(have, total, BATCH):
        stop = min(start + BATCH, total)
        _batch_table(start, stop, now, reporter_id, analyst_id)
        _insert_incidents(now, reporter_id, analyst_id)
        _execute(
            """
            INSERT INTO incidents_obligation
                (incident_id, rule_id, due_at, remind_at, met_at, met_note, waived_at, waived_by_id,
                 waiver_reason,
                 reminder_sent_at, overdue_sent_at, created_at, extension_reason)
            SELECT incident_id, rule_id, due_at, remind_at, met_at, '', waived_at,
                   CASE WHEN waived_at IS NOT NULL THEN %s END,
                   CASE WHEN waived_at IS NOT NULL THEN 'Closed without a report: rejected or duplicate.'
                        ELSE '' END,
                   CASE WHEN remind_at <= %s THEN remind_at END,
                   CASE WHEN due_at <= %s AND met_at IS NULL THEN due_at END,
                   submitted_at, ''
            FROM seed_obligations
            """,
            [analyst_id, now, now],
        )
        _insert_history(now, reporter_id, analyst_id)
        _insert_observables(now, reporter_id, analyst_id, observables_per)
        _insert_incident_alerts()
    _execute("DROP TABLE IF EXISTS seed_batch")
    _execute("DROP TABLE IF EXISTS seed_obligations")
    for table in (
        "incidents_incident",
        "incidents_obligation",
        "incidents_statuschange",
        "incidents_observable",
    ):
        _execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")  # noqa: S608
    _execute(
        "INSERT INTO incidents_referencecounter (year, last_number) VALUES (2025, %s) "
        "ON CONFLICT (year) DO UPDATE SET last_number = excluded.last_number",
        [total],
    )


def _insert_incidents(now: datetime, reporter_id: int, analyst_id: int) -> None:
    _execute(
        """
        INSERT INTO incidents_incident
            (id, reference, title, category, severity, bssn_severity, tlp,
             reporter_name, reporter_email, reporter_phone, technical_contact_name, technical_contact_email,
             technical_contact_phone, description, chronology, impact_confidentiality, impact_integrity,
             impact_availability, affected_systems, affected_services, users_affected, occurred_at,
             detected_at,
             aware_at, personal_data_involved, personal_data_categories, specific_data_categories,
             data_subjects_count, actions_taken, status, outcome, created_at, updated_at, submitted_at,
             closed_at,
             assignee_id, created_by_id, duplicate_of_id, operator_id, next_due_at)
        SELECT b.id, 'INS-2025-' || lpad(b.id::text, 7, '0'),
               initcap(replace(b.category, '_', ' ')) || ' affecting customer services #' || b.id,
               b.category, b.severity,
               CASE WHEN b.status NOT IN ('draft', 'submitted') AND bench_u(b.g, 30) < 0.6 THEN
                    CASE WHEN bench_u(b.g, 31) < 0.7 THEN b.severity ELSE 'high' END ELSE '' END,
               CASE WHEN bench_u(b.g, 32) < 0.7 THEN 'amber' ELSE 'green' END,
               'Security Officer', 'soc@org.example', '', '', '', '',
               'Seeded for the benchmark: what happened, in a paragraph or two.', '-',
               'low', 'low', 'high', '',
               'Customer portal', NULL, b.detected_at - interval '1 hour', b.detected_at,
               b.detected_at, b.personal, CASE WHEN b.personal THEN '["contact"]'::jsonb ELSE '[]'::jsonb END,
               '[]'::jsonb, CASE WHEN b.personal THEN (bench_u(b.g, 33) * 50000)::int END, '', b.status, '',
               b.created_at, coalesce(b.closed_at, b.submitted_at),
               CASE WHEN b.status <> 'draft' THEN b.submitted_at END, b.closed_at,
               CASE WHEN b.status <> 'draft' AND bench_u(b.g, 34) < 0.3 THEN %s END, %s,
               CASE WHEN b.status = 'duplicate' THEN
                    greatest(1, b.id - 1 - (bench_u(b.g, 35) * 500)::int) END,
               b.operator_id, n.next_due_at
        FROM seed_batch b
        LEFT JOIN (
            SELECT incident_id, min(due_at) AS next_due_at FROM seed_obligations
            WHERE met_at IS NULL AND waived_at IS NULL GROUP BY incident_id
        ) AS n ON n.incident_id = b.id
        """,
        [analyst_id, reporter_id],
    )
    del now


def _insert_history(now: datetime, reporter_id: int, analyst_id: int) -> None:
    _execute(
        """
        INSERT INTO incidents_statuschange
            (from_status, to_status, by_bssn, reason, created_at, actor_id, incident_id)
        SELECT h.from_status, h.to_status, h.by_bssn, '', h.at, CASE WHEN h.by_bssn THEN %s ELSE %s END, b.id
        FROM seed_batch b
        CROSS JOIN LATERAL (VALUES
            ('', 'draft', false, b.created_at, true),
            ('draft', 'submitted', false, b.submitted_at, b.status <> 'draft'),
            ('submitted', 'triage', true, b.triaged_at, b.status NOT IN ('draft', 'submitted')),
            ('triage', b.status, true,
             coalesce(b.closed_at, b.triaged_at + (%s - b.triaged_at) * bench_u(b.g, 40)),
             b.status NOT IN ('draft', 'submitted', 'triage'))
        ) AS h(from_status, to_status, by_bssn, at, applies)
        WHERE h.applies
        """,
        [analyst_id, reporter_id, now],
    )


def _insert_observables(now: datetime, reporter_id: int, analyst_id: int, per_incident: float) -> None:
    if per_incident <= 0:
        return
    # n: the indicator's number, in the shared pool (heavy head) or unique to (incident, k).
    value = """
        CASE v.kind
          WHEN 'domain' THEN 'login-' || v.n || '.secure-bank.example'
          WHEN 'ipv4' THEN (mod(v.i / 16777216, 223) + 1) || '.' || mod(v.i / 65536, 256) || '.'
                           || mod(v.i / 256, 256) || '.' || mod(v.i, 256)
          WHEN 'ipv6' THEN '2001:db8::' || to_hex(mod(v.i, 65536)) || ':' || to_hex(mod(v.i / 65536, 65536))
          WHEN 'url' THEN 'http://login-' || v.n || '.secure-bank.example/verify'
          WHEN 'email' THEN 'billing-' || v.n || '@mail.example'
          WHEN 'md5' THEN md5(v.n)
          WHEN 'sha1' THEN left(md5(v.n) || md5('1' || v.n), 40)
          ELSE md5(v.n) || md5('2' || v.n)
        END"""
    _execute(
        f"""
        INSERT INTO incidents_observable
            (incident_id, operator_id, kind, value, tlp, note, added_by_bssn, created_at, added_by_id)
        SELECT b.id, b.operator_id, v.kind, {value}, {pick("bench_u(b.g * 64 + k, 52)", TLPS)}, '',
               bench_u(b.g * 64 + k, 53) < 0.1, least(b.submitted_at + make_interval(mins => 7 * k), %s),
               CASE WHEN bench_u(b.g * 64 + k, 53) < 0.1 THEN %s ELSE %s END
        FROM seed_batch b
        CROSS JOIN LATERAL generate_series(1, floor(bench_u(b.g, 50) * (2 * %s + 1))::int) AS k
        CROSS JOIN LATERAL (
            -- The first indicator comes from the shared pool six times in ten, the second three
            -- (from the pool's other half, so one incident never holds a value twice).
            SELECT (k = 1 AND bench_u(b.g, 54) < 0.6) OR (k = 2 AND bench_u(b.g, 56) < 0.3) AS shared,
                   floor({SHARED_POOL // 2} * power(bench_u(b.g * 64 + k, 55), 3))::bigint
                   + CASE WHEN k = 2 THEN {SHARED_POOL // 2} ELSE 0 END AS item
        ) AS p
        CROSS JOIN LATERAL (
            SELECT CASE WHEN p.shared THEN {pick("bench_u(p.item, 51)", KINDS)}
                        ELSE {pick("bench_u(b.g * 64 + k, 51)", KINDS)} END AS kind,
                   CASE WHEN p.shared THEN 's' || p.item ELSE 'u' || b.id || '-' || k END AS n,
                   CASE WHEN p.shared THEN p.item ELSE 100000 + b.id * 16 + k END AS i
        ) AS v
        WHERE b.status <> 'draft'
        """,  # noqa: S608  (our own constants)
        [now, analyst_id, reporter_id, per_incident],
    )


def _alert_body():
    from portal.alerts.models import Alert

    return _encrypted(Alert, "body", '{"type": "bench"}')


def _insert_incident_alerts() -> None:
    """One alert per submitted incident, delivered to BSSN and (60 %) to the sector regulator."""
    content_type = _scalar(
        "SELECT id FROM django_content_type WHERE app_label = 'incidents' AND model = 'incident'"
    )
    _execute(
        """
        INSERT INTO alerts_alert
            (id, uuid, event_type, sector, province, subject_id, unrouted, created_at, operator_id,
             subject_type_id, body)
        SELECT b.id, md5('alert-' || b.id)::uuid, 'incident.submitted', op.sector, op.province,
               b.id::text, false,
               b.submitted_at + interval '50 milliseconds', b.operator_id, %s, %s
        FROM seed_batch b JOIN accounts_operator op ON op.id = b.operator_id
        WHERE b.status <> 'draft'
        """,
        [content_type, _alert_body()],
    )
    _insert_deliveries(
        "SELECT a.id, a.created_at, a.sector AS route FROM alerts_alert a "
        "WHERE a.id BETWEEN (SELECT min(id) FROM seed_batch) AND (SELECT max(id) FROM seed_batch)",
        first="bssn-csirt",
        second="CASE a.route WHEN 'fintech_payment' THEN 'bi' WHEN 'fintech_lending' THEN 'ojk' "
        "WHEN 'ecommerce' THEN 'ojk' ELSE NULL END",
    )


def _insert_deliveries(alerts_sql: str, *, first: str, second: str) -> None:
    """Deliver each alert of `alerts_sql` (id, created_at, route) to `first` and 60 % of the time `second`."""
    _execute(
        f"""
        INSERT INTO alerts_delivery
            (id, kind, address, status, attempt_count, next_attempt_at, delivered_at, last_error, created_at,
             alert_id, authority_id, channel_id)
        SELECT a.id * 2 + d.j, 'email', c.email, CASE WHEN d.dead THEN 'dead' ELSE 'delivered' END,
               CASE WHEN d.dead THEN 8 WHEN d.retried THEN 2 ELSE 1 END, a.created_at,
               CASE WHEN NOT d.dead THEN a.created_at + make_interval(secs =>
                    0.2 + 3 * power(bench_u(a.id * 2 + d.j, 61), 4)
                    + CASE WHEN d.retried THEN 60 * power(2, floor(bench_u(a.id * 2 + d.j, 62) * 6))
                           ELSE 0 END)
               END,
               CASE WHEN d.dead THEN 'SMTP 550: mailbox unavailable' ELSE '' END, a.created_at,
               a.id, c.authority_id, c.id
        FROM ({alerts_sql}) AS a
        CROSS JOIN LATERAL (VALUES (0, {_quote(first)}), (1, {second})) AS t(j, code)
        CROSS JOIN LATERAL (
            SELECT t.j, bench_u(a.id * 2 + t.j, 60) < 0.015 AS dead,
                   bench_u(a.id * 2 + t.j, 63) < 0.03 AS retried
        ) AS d
        JOIN alerts_authority au ON au.code = t.code
        JOIN LATERAL (SELECT id, authority_id, email FROM alerts_channel ch
                      WHERE ch.authority_id = au.id ORDER BY ch.id LIMIT 1) AS c ON true
        WHERE t.j = 0 OR bench_u(a.id, 64) < 0.6
        """  # noqa: S608  (our own constants)
    )


FLAG_ALERT_OFFSET = 1_000_000_000


def seed_flags(total: int, *, now: datetime, reporter_id: int) -> None:
    """Add suspected-case flags (with their alerts) at healthtech organisations until there are `total`."""
    from incidents.cases.models import CaseFlag

    have = _scalar("SELECT coalesce(max(id), 0) FROM cases_caseflag")
    if have >= total:
        return
    empty = _encrypted(CaseFlag, "note", "")
    province = pick("bench_u(g, 74)", provinces())
    definition = _scalar("SELECT max(id) FROM cases_casedefinition")
    # Onset in four waves (centred 1000, 700, 400 and 100 days ago), each about two months wide.
    _execute(
        f"""
        INSERT INTO cases_caseflag
            (id, uid, classification, evaluation, symptoms, onset_date, epidemiological, sari, antigen_result,
             province, regency_code, regency_name, age_band, sex, consultation_ref, consultation_ref_index,
             legal_basis, identity_basis, identity_basis_reason, note, recontact_ref, status, withdrawn_at,
             withdraw_reason, revision, created_at, updated_at, created_by_id, definition_id, duplicate_of_id,
             operator_id, classes)
        SELECT g, md5('flag-' || g)::uuid, f.classification, '{{}}'::jsonb, '["fever", "cough"]'::jsonb,
               f.onset,
               '[]'::jsonb, f.classification = 'suspect_b', 'not_done',
               CASE WHEN bench_u(g, 73) < 0.5 THEN op.province ELSE {province} END, '', '',
               {pick("bench_u(g, 75)", AGE_BANDS)},
               CASE WHEN bench_u(g, 76) < 0.5 THEN 'female' ELSE 'male' END,
               %(empty)s, '', 'public_task', '', %(empty)s, %(empty)s, 'RC-' || lpad(g::text, 10, '0'),
               CASE WHEN f.withdrawn THEN 'withdrawn' ELSE 'active' END,
               CASE WHEN f.withdrawn THEN f.flagged + interval '1 day' END,
               CASE WHEN f.withdrawn THEN 'mistake' ELSE '' END, 1, f.flagged, f.flagged, %(reporter)s,
               %(definition)s,
               CASE WHEN g > 60 AND bench_u(g, 77) < 0.03 THEN g - 1 - (bench_u(g, 78) * 50)::int END,
               op.id, jsonb_build_array(f.classification)
        FROM generate_series(%(start)s::bigint + 1, %(stop)s::bigint) AS g
        CROSS JOIN LATERAL (
            SELECT ((%(today)s::date) - (
                       (ARRAY[1000, 700, 400, 100])[1 + floor(bench_u(g, 70) * 4)::int]
                       + ((bench_u(g, 71) + bench_u(g, 72) + bench_u(g, 79) - 1.5) * 60)::int
                   )) AS onset_raw,
                   {pick("bench_u(g, 80)", CLASSES)} AS classification,
                   bench_u(g, 81) < 0.04 AS withdrawn
        ) AS r
        CROSS JOIN LATERAL (
            SELECT least(r.onset_raw, %(today)s::date) AS onset, r.classification, r.withdrawn,
                   least((least(r.onset_raw, %(today)s::date) + (1 + bench_u(g, 82) * 4)::int)::timestamptz
                         + make_interval(hours => (bench_u(g, 83) * 12)::int), %(now)s) AS flagged
        ) AS f
        CROSS JOIN (
            SELECT array_agg(id ORDER BY id) AS ids FROM accounts_operator WHERE sector = 'healthtech'
        ) AS h
        JOIN accounts_operator op ON op.id = h.ids[1 + floor(bench_u(g, 84) * array_length(h.ids, 1))::int]
        """,  # noqa: S608  (our own constants)
        {
            "empty": empty,
            "reporter": reporter_id,
            "definition": definition,
            "start": have,
            "stop": total,
            "today": now.date(),
            "now": now,
        },
    )
    content_type = _scalar(
        "SELECT id FROM django_content_type WHERE app_label = 'cases' AND model = 'caseflag'"
    )
    _execute(
        """
        INSERT INTO alerts_alert
            (id, uuid, event_type, sector, province, subject_id, unrouted, created_at, operator_id,
             subject_type_id, body)
        SELECT %s + f.id, md5('flag-alert-' || f.id)::uuid, 'suspected_case.flagged', 'healthtech',
               f.province,
               f.id::text, false, f.created_at + interval '50 milliseconds', f.operator_id, %s, %s
        FROM cases_caseflag f WHERE f.id > %s
        """,
        [FLAG_ALERT_OFFSET, content_type, _alert_body(), have],
    )
    _insert_deliveries(
        "SELECT a.id, a.created_at, a.province AS route FROM alerts_alert a "
        f"WHERE a.id > {FLAG_ALERT_OFFSET + have}",
        first="kemenkes",
        second="'dinkes-' || lower(substr(a.route, 4))",
    )
    _execute(
        "SELECT setval(pg_get_serial_sequence('cases_caseflag', 'id'), (SELECT max(id) FROM cases_caseflag))"
    )
    for table in ("alerts_alert", "alerts_delivery"):
        _execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")  # noqa: S608


def analyse() -> None:
    """VACUUM ANALYZE what was loaded, as autovacuum would after a bulk load (index-only scans need it)."""
    for table in (
        "accounts_operator",
        "incidents_incident",
        "incidents_obligation",
        "incidents_statuschange",
        "incidents_observable",
        "cases_caseflag",
        "alerts_alert",
        "alerts_delivery",
    ):
        _execute(f"VACUUM ANALYZE {table}")


def seed(total: int, *, observables: int, now: datetime, reporter_id: int, analyst_id: int) -> None:
    """Seed (or extend) to `total` incidents, about `observables` observables and total/4 case flags."""
    prepare()
    seed_operators()
    have = _scalar("SELECT count(*) FROM incidents_incident")
    # A large load builds the indexes once at the end; a small top-up keeps them.
    defer = indexes_built_after() if total - have > max(have, 50_000) else nullcontext()
    with defer:
        seed_incidents(
            total,
            now=now,
            reporter_id=reporter_id,
            analyst_id=analyst_id,
            observables_per=observables / max(total, 1),
        )
        seed_flags(total // 4, now=now, reporter_id=reporter_id)
    finish()
    analyse()
