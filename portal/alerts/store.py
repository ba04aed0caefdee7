"""The delivery hot path's statements, written in SQL.

Every alert costs a routing query, two inserts, a claim and a result. Through the ORM
each statement spent more time being compiled in Python than being run by the
database, which capped the pipeline well below its target (bench/bench_alerts.py,
docs/decisions/0004-alert-hot-path-in-sql.md). These few statements are therefore
written once here, in SQL that PostgreSQL and SQLite (3.35 or newer, for RETURNING)
both accept, with table and column names taken from the models. Values go in through
the fields' own `get_db_prep_value` and come back through the same converters the
ORM applies, so encrypted columns are encrypted and decrypted exactly as elsewhere.
Everything else in the app uses the ORM. Identifiers in the SQL come from model
metadata, never from input; every value is a query parameter.
"""

import functools
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.db.models import F, Model

from . import lease
from .models import Alert, Attempt, Channel, ChannelKind, Delivery, DeliveryStatus, RoutingRule

# What a webhook send needs, per model; the rest stays deferred.
CLAIMED_DELIVERY = ("id", "alert_id", "channel_id", "authority_id", "kind", "address", "attempt_count")
CLAIMED_ALERT = ("id", "uuid", "event_type", "body")
CLAIMED_CHANNEL = ("id", "kind", "url", "secret", "previous_secret", "previous_secret_expires_at", "enabled")
ROUTED_CHANNEL = ("id", "authority_id", "kind", "email", "url", "event_types", "enabled")


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _in_model_order(model: type[Model], attnames: Iterable[str]) -> list:
    """Return the model's concrete fields named by `attnames`, in the order `Model.from_db` expects."""
    wanted = set(attnames)
    fields = [f for f in model._meta.concrete_fields if f.attname in wanted]
    if len(fields) != len(wanted):
        raise LookupError(f"{model.__name__} has no field among {sorted(wanted)}")
    return fields


def _prep(model: type[Model], attname: str, value):
    """Return `value` as the database stores `model.attname` (as the ORM would send it)."""
    return _field(model, attname).get_db_prep_value(value, connection, prepared=False)


@functools.cache
def _field(model: type[Model], attname: str):
    return next(f for f in model._meta.concrete_fields if f.attname == attname)


@functools.cache
def _converters(vendor: str, model: type[Model], attnames: tuple[str, ...]) -> list[tuple]:
    """Return (field, converters) pairs that turn raw column values into field values."""
    pairs = []
    for field in _in_model_order(model, attnames):
        column = field.get_col(model._meta.db_table)
        pairs.append(
            (column, connection.ops.get_db_converters(column) + column.get_db_converters(connection))
        )
    return pairs


def _converted(model: type[Model], attnames: tuple[str, ...], values) -> list:
    """Return raw column values (in `_in_model_order`) as the fields' Python values."""
    converted = []
    for (column, converters), value in zip(
        _converters(connection.vendor, model, attnames), values, strict=True
    ):
        for converter in converters:
            value = converter(value, column, connection)
        converted.append(value)
    return converted


def _instance(model: type[Model], attnames: tuple[str, ...], values: list):
    """Build a model instance from raw column values (in `_in_model_order`), deferring the rest."""
    return model.from_db(connection.alias, _loaded(model, attnames), _converted(model, attnames, values))


@functools.cache
def _loaded(model: type[Model], attnames: tuple[str, ...]) -> list[str]:
    return [f.attname for f in _in_model_order(model, attnames)]


@functools.cache
def _prepared_cursor_class():
    from django.db.backends.postgresql.base import ServerBindingCursor

    class PreparedCursor(ServerBindingCursor):
        """Parameters bound by the server, each statement prepared once per connection."""

        def execute(self, query, params=None, *, prepare=None, binary=None):
            return super().execute(query, params, prepare=True, binary=binary)

    return PreparedCursor


@contextmanager
def _cursor() -> Iterator:
    """Return a cursor for the hot path's statements: on PostgreSQL, a prepared-statement cursor.

    The same few statements run for every alert, and PostgreSQL spent more time planning
    them than running them. Prepared once per connection, they are planned once (psycopg
    keeps up to `prepared_max` per connection). The rest of the app keeps Django's
    client-side binding. When prepared statements are off (`prepare_threshold` None,
    DATABASE_PREPARED_STATEMENTS=false), this cursor binds on the server and prepares nothing.
    """
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    with connection.wrap_database_errors:
        raw = _prepared_cursor_class()(connection.connection)
    wrap = connection.make_debug_cursor if connection.queries_logged else connection.make_cursor
    with wrap(raw) as cursor:
        yield cursor


# --- Routing ---------------------------------------------------------------------


def _rules_sql(patterns: int) -> str:
    """The authorities whose enabled rules match an event (patterns), a sector and a province."""
    return (
        f"SELECT {_q('authority_id')} FROM {_q(RoutingRule._meta.db_table)} "  # noqa: S608
        f"WHERE {_q('enabled')} AND {_q('event_pattern')} IN ({', '.join(['%s'] * patterns)}) "
        f"AND {_q('sector')} IN ('', %s) AND {_q('province')} IN ('', %s)"
    )


@functools.cache
def _route_sql(vendor: str, patterns: int) -> str:
    columns = ", ".join(_q(f.column) for f in _in_model_order(Channel, ROUTED_CHANNEL))
    return (
        f"SELECT {columns} FROM {_q(Channel._meta.db_table)} "  # noqa: S608
        f"WHERE {_q('authority_id')} IN ({_rules_sql(patterns)}) ORDER BY {_q('id')}"
    )


def routed_channels(*, patterns: list[str], sector: str, province: str) -> list[Channel]:
    """Return the channels of the authorities whose enabled rules match, by id (secrets deferred).

    Disabled channels are included: their deliveries are written as held.
    """
    sql = _route_sql(connection.vendor, len(patterns))
    with _cursor() as cursor:
        cursor.execute(sql, [*patterns, sector, province])
        rows = cursor.fetchall()
    return [_instance(Channel, ROUTED_CHANNEL, list(row)) for row in rows]


# --- Outbox ----------------------------------------------------------------------


@functools.cache
def _insert_sql(vendor: str, model: type[Model], rows: int) -> str:
    fields = _insertable(model)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    return (
        f"INSERT INTO {_q(model._meta.db_table)} ({', '.join(_q(f.column) for f in fields)}) "  # noqa: S608
        f"VALUES {', '.join([row] * rows)} RETURNING {_q('id')}"
    )


@functools.cache
def _insertable(model: type[Model]) -> list:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


def _insert_params(model: type[Model], objects: list[Model]) -> list:
    return [
        field.get_db_prep_save(field.pre_save(obj, add=True), connection)
        for obj in objects
        for field in _insertable(model)
    ]


def insert(model: type[Model], objects: list[Model]) -> None:
    """INSERT `objects` (new, unsaved, no custom save logic) in one statement and set their ids."""
    with _cursor() as cursor:
        cursor.execute(_insert_sql(connection.vendor, model, len(objects)), _insert_params(model, objects))
        ids = [row[0] for row in cursor.fetchall()]
    for obj, pk in zip(objects, ids, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = connection.alias


@functools.cache
def _routed_insert_sql(vendor: str, patterns: int) -> str:
    """PostgreSQL: insert the alert and one delivery per routed channel, in one statement."""
    delivery, channel = Delivery._meta.db_table, Channel._meta.db_table
    c = _q("c")
    # Every delivery column, so that a field added to Delivery fails here, not silently.
    null = "NULL"
    values = {
        "alert_id": f"{_q('alert')}.{_q('id')}",
        "channel_id": f"{c}.{_q('id')}",
        "authority_id": f"{c}.{_q('authority_id')}",
        "kind": f"{c}.{_q('kind')}",
        "address": f"CASE WHEN {c}.{_q('kind')} = %s THEN {c}.{_q('email')} ELSE {c}.{_q('url')} END",
        "status": f"CASE WHEN {c}.{_q('enabled')} THEN %s ELSE %s END",
        "attempt_count": "0",
        "next_attempt_at": f"{_q('alert')}.{_q('created_at')}",
        "claimed_at": null,
        "claim_token": null,
        "leased_until": null,
        "delivered_at": null,
        "last_error": "''",
        "created_at": f"{_q('alert')}.{_q('created_at')}",
    }
    fields = _insertable(Delivery)
    if {f.attname for f in fields} != set(values):
        raise LookupError("the routed insert does not cover every Delivery column")
    # The id, kind and channel of each delivery to send now.
    arrays = [
        f"ARRAY(SELECT {_q(column)} FROM {_q('routed')} WHERE {_q('status')} = %s ORDER BY {_q('id')})"  # noqa: S608
        for column in ("id", "kind", "channel_id")
    ]
    return (
        f"WITH {_q('alert')} AS ({_insert_sql(vendor, Alert, 1)}, {_q('created_at')}), "  # noqa: S608
        f"{_q('routed')} AS (INSERT INTO {_q(delivery)} ({', '.join(_q(f.column) for f in fields)}) "
        f"SELECT {', '.join(values[f.attname] for f in fields)} "
        f"FROM {_q('alert')}, {_q(channel)} AS {c} "
        f"WHERE {c}.{_q('authority_id')} IN ({_rules_sql(patterns)}) "
        f"AND (jsonb_array_length({c}.{_q('event_types')}) = 0 OR {c}.{_q('event_types')} ? %s) "
        f"ORDER BY {c}.{_q('id')} RETURNING {_q('id')}, {_q('kind')}, {_q('status')}, {_q('channel_id')}) "
        f"SELECT {_q('alert')}.{_q('id')}, {', '.join(arrays)}, "  # noqa: S608
        f"(SELECT count(*) FROM {_q('routed')}) FROM {_q('alert')}"
    )


def insert_routed(
    alert: Alert, *, patterns: list[str], sector: str, province: str
) -> tuple[list[tuple[int, str, int]], int]:
    """PostgreSQL: INSERT `alert` and a delivery to every channel its routing rules reach.

    Return ((id, kind, channel id) of the deliveries to send now, how many deliveries
    were written in all): a disabled channel's delivery is written as held. The same routing as
    `routed_channels` plus `Channel.wants`, in the statement that writes the alert: one
    round trip where routing and two inserts took three.
    """
    pending, held = DeliveryStatus.PENDING.value, DeliveryStatus.HELD.value
    params = _insert_params(Alert, [alert])
    params += [ChannelKind.EMAIL.value, pending, held, *patterns, sector, province]
    params += [alert.event_type, pending, pending, pending]
    with _cursor() as cursor:
        cursor.execute(_routed_insert_sql(connection.vendor, len(patterns)), params)
        alert_id, ids, kinds, channels, written = cursor.fetchone()
    alert.pk = alert_id
    alert._state.adding = False
    alert._state.db = connection.alias
    return list(zip(ids, kinds, channels, strict=True)), written


# --- Claiming --------------------------------------------------------------------
#
# Every statement here has one plan that is right whatever PostgreSQL's statistics say:
# a fresh table, or one last analysed while nothing was pending, has statistics that
# call every partial index empty, and a plan that starts from the wrong index turns a
# claim into a scan of the whole backlog, once per alert.


def _status(value: str) -> str:
    """Return one of the model's status values as an SQL literal (a constant of the code, never input).

    The outbox's partial indexes (due rows, rows in sending) serve a statement only when
    it names their status as a constant: with the status as a parameter, a prepared
    statement's generic plan cannot prove the index's condition and reads every row of
    the channel instead.
    """
    if not value.isidentifier():
        raise ValueError(f"not a status value: {value!r}")
    return f"'{value}'"


def _sending_claims(channel: str) -> str:
    """SQL: how many claims (a batch counts once) are sending to the channel `channel` (an SQL term).

    The per-channel concurrency cap, read from the partial index of rows in sending.
    """
    d, s, sending = _q(Delivery._meta.db_table), _q("s"), _status(DeliveryStatus.SENDING)
    return (
        f"(SELECT count(DISTINCT {s}.{_q('claim_token')}) FROM {d} AS {s} "  # noqa: S608
        f"WHERE {s}.{_q('channel_id')} = {channel} AND {s}.{_q('status')} = {sending})"
    )


@functools.cache
def _claim_sql(vendor: str, single: bool) -> str:
    """Claim due deliveries to one channel, oldest first, and read what a send needs.

    Those of channel `channel`, or (`single`) delivery `delivery` alone. Other
    parameters: `now`, `cap`, `limit`, and the claim's `claimed_at`, `token` and
    `leased_until`.
    """
    delivery, alert, channel = Delivery._meta.db_table, Alert._meta.db_table, Channel._meta.db_table
    d, target = _q(delivery), _q("target")
    pending = _status(DeliveryStatus.PENDING)
    prefix, one = "", ""
    if not single:
        channel_id = "%(channel)s"
    else:
        # The delivery, read by primary key alone: with its status in the WHERE a plan
        # could start from the index of due rows and read the whole backlog to find it.
        prefix = (
            f"WITH {target} AS (SELECT {_q('channel_id')}, {_q('status')}, {_q('next_attempt_at')} "  # noqa: S608
            f"FROM {d} WHERE {_q('id')} = %(delivery)s) "
        )
        channel_id = (
            f"(SELECT {_q('channel_id')} FROM {target} WHERE {_q('status')} = {pending} "  # noqa: S608
            f"AND {_q('next_attempt_at')} <= %(now)s)"
        )
        # Its id and exact due time: whichever index a plan starts from leads to that row.
        one = (
            f"AND {_q('id')} = %(delivery)s "  # noqa: S608
            f"AND {_q('next_attempt_at')} = (SELECT {_q('next_attempt_at')} FROM {target}) "
        )
    # The channel's oldest due deliveries, from its index of due rows, while fewer than
    # `cap` claims are sending to it (counted once per statement; a soft cap: two claims
    # at the same instant may both pass).
    due = (
        f"SELECT {_q('id')} FROM {d} "  # noqa: S608
        f"WHERE {_q('channel_id')} = {channel_id} AND {_q('status')} = {pending} "
        f"AND {_q('next_attempt_at')} <= %(now)s {one}AND {_sending_claims(channel_id)} < %(cap)s "
        f"ORDER BY {_q('next_attempt_at')} LIMIT %(limit)s"
    )
    claim = (
        f"UPDATE {d} SET {_q('status')} = {_status(DeliveryStatus.SENDING)}, "  # noqa: S608
        f"{_q('claimed_at')} = %(claimed_at)s, {_q('claim_token')} = %(token)s, "
        f"{_q('leased_until')} = %(leased_until)s, {_q('attempt_count')} = {d}.{_q('attempt_count')} + 1"
    )
    claimed = [_q(f.column) for f in _in_model_order(Delivery, CLAIMED_DELIVERY)]
    joined = ((Alert, alert, "alert_id", CLAIMED_ALERT), (Channel, channel, "channel_id", CLAIMED_CHANNEL))
    if vendor == "postgresql":
        # Skipping rows another worker is claiming, in a WITH so that it runs once: as a
        # subquery in the WHERE, a re-scan would skip the rows just locked and take more.
        # The UPDATE then reaches each row by its primary key, and the alert and channel
        # are joined to what it returns, each by its own primary key.
        c, batch = _q("claimed"), _q("batch")
        read = [f"{c}.{column}" for column in claimed] + [
            f"{_q(t)}.{_q(f.column)}" for m, t, _, names in joined for f in _in_model_order(m, names)
        ]
        links = " ".join(f"JOIN {_q(t)} ON {_q(t)}.{_q('id')} = {c}.{_q(link)}" for _, t, link, _ in joined)
        prefix = f"{prefix}, " if prefix else "WITH "
        return (
            f"{prefix}{batch} AS ({due} FOR UPDATE SKIP LOCKED), "  # noqa: S608
            f"{c} AS ({claim} FROM {batch} WHERE {d}.{_q('id')} = {batch}.{_q('id')} "
            f"RETURNING {', '.join(f'{d}.{column}' for column in claimed)}) "
            f"SELECT {', '.join(read)} FROM {c} {links}"
        )
    # SQLite has one writer at a time (nothing to skip), and its RETURNING sees only the
    # updated table: one scalar subquery per column of the alert and the channel.
    returning = [f"{d}.{column}" for column in claimed] + [
        f"(SELECT {_q(f.column)} FROM {_q(t)} WHERE {_q(t)}.{_q('id')} = {d}.{_q(link)})"  # noqa: S608
        for m, t, link, names in joined
        for f in _in_model_order(m, names)
    ]
    return f"{prefix}{claim} WHERE {d}.{_q('id')} IN ({due}) RETURNING {', '.join(returning)}"


def _claimed(row, channel: Channel | None = None) -> Delivery:
    """Build a claimed delivery from a RETURNING row; `channel`, when given, is its (already read) channel."""
    row = list(row)
    n_delivery, n_alert = len(CLAIMED_DELIVERY), len(CLAIMED_ALERT)
    delivery = _instance(Delivery, CLAIMED_DELIVERY, row[:n_delivery])
    delivery.alert = _instance(Alert, CLAIMED_ALERT, row[n_delivery : n_delivery + n_alert])
    delivery.channel = channel or _instance(Channel, CLAIMED_CHANNEL, row[n_delivery + n_alert :])
    return delivery


def _claim(*, single: bool, token: uuid.UUID, now: datetime, limit: int, **target) -> list[Delivery]:
    """Run a claim (`_claim_sql`) for `target` (its `channel` or `delivery`); return what it took, by id."""
    params = {
        **target,
        "now": _prep(Delivery, "next_attempt_at", now),
        "cap": settings.ALERTS_CHANNEL_CONCURRENCY,
        "limit": limit,
        "claimed_at": _prep(Delivery, "claimed_at", now),
        "token": _prep(Delivery, "claim_token", token),
        "leased_until": _prep(Delivery, "leased_until", lease.expiry(now)),
    }
    with _cursor() as cursor:
        cursor.execute(_claim_sql(connection.vendor, single), params)
        rows = cursor.fetchall()
    batch: list[Delivery] = []
    for row in rows:
        # Every row carries the same channel: read (and decrypt) it once.
        batch.append(_claimed(row, channel=batch[0].channel if batch else None))
    return sorted(batch, key=lambda d: d.pk)


def claim(*, delivery_id: int, token: uuid.UUID, now: datetime) -> Delivery | None:
    """Mark one pending, due delivery as being sent under `token`, in one statement.

    Return it with its alert and channel attached (only what a webhook send reads;
    other fields load on access), or None when it is not pending and due, or when its
    channel already has ALERTS_CHANNEL_CONCURRENCY claims sending.
    """
    claimed = _claim(single=True, token=token, now=now, limit=1, delivery=delivery_id)
    return claimed[0] if claimed else None


def claim_due(*, channel_id: int, token: uuid.UUID, now: datetime, limit: int) -> list[Delivery]:
    """Claim up to `limit` of the oldest due deliveries to one channel under `token`, in one statement.

    Nothing when the channel already has ALERTS_CHANNEL_CONCURRENCY claims sending.
    """
    return _claim(single=False, token=token, now=now, limit=limit, channel=channel_id)


@functools.cache
def _sending_to_sql(vendor: str, channels: int) -> str:
    d = _q(Delivery._meta.db_table)
    return (
        f"SELECT DISTINCT {_q('channel_id')} FROM {d} "  # noqa: S608
        f"WHERE {_q('channel_id')} IN ({', '.join(['%s'] * channels)}) "
        f"AND {_q('status')} = {_status(DeliveryStatus.SENDING)} AND {_q('leased_until')} > %s"
    )


def channels_sending(*, channel_ids: list[int], now: datetime) -> set[int]:
    """Return those of `channel_ids` to which a live claim (its lease running) is sending now.

    Read from the partial index of rows in sending; writes nothing.
    """
    if not channel_ids:
        return set()
    with _cursor() as cursor:
        cursor.execute(
            _sending_to_sql(connection.vendor, len(channel_ids)),
            [*channel_ids, _prep(Delivery, "leased_until", now)],
        )
        return {row[0] for row in cursor.fetchall()}


def release(*, delivery_ids: list[int], token: uuid.UUID) -> int:
    """Give back claimed deliveries that were not tried: pending again, their attempt not counted."""
    if not delivery_ids:
        return 0
    return Delivery.objects.filter(pk__in=delivery_ids, claim_token=token).update(
        status=DeliveryStatus.PENDING, claim_token=None, attempt_count=F("attempt_count") - 1
    )


# --- Recording -------------------------------------------------------------------


@functools.cache
def _finish_sql(vendor: str, attnames: tuple[str, ...]) -> str:
    assignments = ", ".join(f"{_q(Delivery._meta.get_field(a).column)} = %s" for a in attnames)
    update = (
        f"UPDATE {_q(Delivery._meta.db_table)} SET {assignments}, {_q('claim_token')} = NULL "  # noqa: S608
        f"WHERE {_q('id')} = %s AND {_q('claim_token')} = %s"
    )
    if vendor != "postgresql":
        return update
    # PostgreSQL runs a data-modifying WITH once, whatever the main statement does: the
    # attempt and the delivery's new state are written together, in one round trip.
    return f"WITH {_q('attempt')} AS ({_insert_sql(vendor, Attempt, 1)}) {update}"


def finish(*, delivery_id: int, token: uuid.UUID, attempt: Attempt, fields: dict) -> bool:
    """Record the attempt, and move the delivery on if `token` is still its claim; return whether it was.

    `fields` are the delivery's new values (status, and delivered_at, last_error or
    next_attempt_at); the claim token is cleared with them.
    """
    attnames = tuple(sorted(fields))
    params = [_prep(Delivery, name, fields[name]) for name in attnames]
    params += [delivery_id, _prep(Delivery, "claim_token", token)]
    if connection.vendor == "postgresql":
        params = _insert_params(Attempt, [attempt]) + params
    else:
        insert(Attempt, [attempt])
    with _cursor() as cursor:
        cursor.execute(_finish_sql(connection.vendor, attnames), params)
        return cursor.rowcount == 1
