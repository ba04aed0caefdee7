"""Write and verify the audit log."""

from collections.abc import Iterator
from dataclasses import dataclass

from django.db import models, transaction
from django.http import HttpRequest
from django.utils import timezone

from portal.proxies import client_address
from portal.transparency import head_mac

from .models import GENESIS_HASH, AuditEvent, AuditStream

STREAM_PREFIX = "audit/"


def client_ip(request: HttpRequest | None) -> str | None:
    """Return the caller's address, as seen through the configured proxies."""
    if request is None:
        return None
    return client_address(request)


def record(
    *,
    action: str,
    actor=None,
    operator=None,
    target: models.Model | None = None,
    changes: dict | None = None,
    request: HttpRequest | None = None,
    stream: str = "main",
) -> AuditEvent:
    """Append one event to the audit chain `stream` and return it.

    Takes the stream head's row lock, so concurrent writers form one valid chain;
    the critical section is two small writes. Joins the caller's transaction, so an
    action that rolls back leaves no audit event behind.
    """
    if actor is None and request is not None and request.user.is_authenticated:
        actor = request.user
    with transaction.atomic():
        head, _ = AuditStream.objects.get_or_create(name=stream)
        head = AuditStream.objects.select_for_update().get(pk=head.pk)
        event = AuditEvent(
            stream=stream,
            seq=head.last_seq + 1,
            created_at=timezone.now(),
            actor=actor if actor is not None and actor.pk else None,
            actor_label=str(actor) if actor is not None else "",
            operator=operator,
            action=action,
            target_type=target._meta.label_lower if target is not None else "",
            target_id=str(target.pk) if target is not None else "",
            target_repr=str(target)[:200] if target is not None else "",
            ip_address=client_ip(request),
            changes=changes or {},
            prev_hash=head.last_hash,
        )
        event.hash = event.compute_hash()
        event.save(force_insert=True)
        AuditStream.objects.filter(pk=head.pk).update(
            last_seq=event.seq, last_hash=event.hash, mac=head_mac(stream_name(stream), event.seq, event.hash)
        )
    return event


def stream_name(stream: str) -> str:
    """Return the checkpoint stream name of audit chain `stream`."""
    return f"{STREAM_PREFIX}{stream}"


@dataclass(frozen=True)
class ChainBreak:
    stream: str
    seq: int
    event_id: int
    reason: str


def verify_chain(*, stream: str | None = None) -> Iterator[ChainBreak]:
    """Yield the first break of each chain (or of `stream`); nothing when all verify."""
    streams = (
        [stream]
        if stream
        else list(AuditEvent.objects.values_list("stream", flat=True).distinct().order_by("stream"))
    )
    for name in streams:
        prev_hash = GENESIS_HASH
        expected_seq = 1
        for event in AuditEvent.objects.filter(stream=name).order_by("seq").iterator(chunk_size=2000):
            if event.seq != expected_seq:
                yield ChainBreak(name, event.seq, event.pk, f"expected sequence {expected_seq}")
                break
            if event.prev_hash != prev_hash:
                yield ChainBreak(name, event.seq, event.pk, "previous hash does not match")
                break
            if event.compute_hash() != event.hash:
                yield ChainBreak(name, event.seq, event.pk, "content does not match its hash")
                break
            prev_hash = event.hash
            expected_seq += 1
