"""Disclosure decided when a message leaves, not when it was queued.

An alert is written when its event happens; it may leave minutes or a day later
(retries, a receiver that is down). Whether personal data may go with it is decided
again at that moment, by the app that raised the event, which registers a check:

    register("suspected_case.*", prepare_send)

`prepare_send(delivery, data) -> Prepared` returns the data document this delivery may
carry now (the stored one, less or more), reading the basis (consent ledger, a
recorded legal basis) at this moment, and a `record(body)` that records what is about
to leave, to whom, in which attempt.

The delivery path calls `body_for_send(delivery)` once per send and retry, right
before the bytes go out (webhook body, e-mail text and attachment). Event types
nobody registered are sent as stored, with no extra work. portal.alerts never
imports the apps that register: they do so when Django is ready.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass

from .models import Delivery


@dataclass(frozen=True)
class Prepared:
    """What a send-time check decided: the document to send, and how to record that it left."""

    data: dict
    record: Callable[[bytes], None] | None = None


Check = Callable[[Delivery, dict], Prepared]
_checks: dict[str, Check] = {}


def register(pattern: str, check: Check) -> None:
    """Register the send-time check of an event type ("x.y") or of a family ("x.*")."""
    _checks[pattern] = check


def check_for(event_type: str) -> Check | None:
    """Return the check registered for `event_type`, exactly or by its family, or None."""
    return _checks.get(event_type) or _checks.get(event_type.split(".", 1)[0] + ".*")


def _render(envelope: dict) -> str:
    # The same serialisation as Alert.render_body, so an unchanged document gives the same bytes.
    return json.dumps(envelope, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def body_for_send(delivery: Delivery) -> bytes:
    """Return the bytes `delivery` may carry right now, and make its alert carry exactly them.

    The alert attached to the delivery (in memory only; the stored row is unchanged)
    gets the checked body and data, so every transport — the webhook body, the e-mail
    text, HTML and alert.json — sends the same decided document. A check that fails
    raises: nothing leaves without a decision, and the sweeper tries again later.
    """
    alert = delivery.alert
    check = check_for(alert.event_type)
    if check is None:
        return alert.body.encode()
    envelope = json.loads(alert.body)
    prepared = check(delivery, envelope["data"])
    envelope["data"] = prepared.data
    alert.body = _render(envelope)
    alert.payload = prepared.data
    body = alert.body.encode()
    if prepared.record is not None:
        prepared.record(body)
    return body
