"""Celery tasks of accounts: each takes an id and calls one service."""

from celery import shared_task

from . import services


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def send_password_reset_task(request_id: int) -> None:
    services.password_reset_send(request_id=request_id)
