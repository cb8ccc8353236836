"""Running deliveries: one attempt per task, the next queued with its backoff."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from .delivery import attempt, claim
from .events import queue
from .models import Delivery

# A delivery left "sending" this long lost its worker: it is tried again.
SENDING_TIMEOUT = timedelta(minutes=5)


def deliver(pk: int) -> str:
    delivery = claim(pk)
    if delivery is None:
        return "skipped"
    wait = attempt(delivery)
    if wait is not None:
        queue(pk, countdown=wait)
    return delivery.status


def send_due(now=None) -> int:
    """Attempt the deliveries that are due (their queued task may be lost), and put
    back those whose worker died mid-attempt."""
    now = now or timezone.now()
    Delivery.objects.filter(
        status=Delivery.Status.SENDING, claimed_at__lt=now - SENDING_TIMEOUT
    ).update(status=Delivery.Status.RETRYING, next_attempt_at=now)
    late = now - timedelta(seconds=30)  # a queued task normally runs before this
    due = Delivery.objects.filter(
        Q(status=Delivery.Status.PENDING, created_at__lt=late)
        | Q(status=Delivery.Status.RETRYING, next_attempt_at__lt=late)
    )
    return sum(deliver(pk) != "skipped" for pk in due.values_list("pk", flat=True)[:100])
