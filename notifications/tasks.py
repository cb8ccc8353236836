"""Celery tasks of notifications: one line each."""

from __future__ import annotations

from celery import shared_task

from . import alarms, sending


@shared_task(acks_late=True)
def deliver(delivery_id: int) -> str:
    """One attempt at one delivery (the next one is queued with its backoff)."""
    return sending.deliver(delivery_id)


@shared_task
def send_due() -> int:
    """Every half minute: attempts whose time came and whose message was lost."""
    return sending.send_due()


@shared_task
def check_alarms() -> int:
    """Every minute: locations unavailable, schedules past their recovery point."""
    return alarms.check()
