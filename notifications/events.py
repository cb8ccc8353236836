"""From something that happened to deliveries: one per enabled rule that asks for it."""

from __future__ import annotations

import logging

from django.db import transaction

from .models import Delivery, Rule
from .payload import job_event

log = logging.getLogger(__name__)


def notify(workspace, event: str, doc: dict, rules=None) -> list[Delivery]:
    """Create the deliveries of ``event`` in ``workspace`` and queue them after commit."""
    rules = rules if rules is not None else Rule.objects.filter(workspace=workspace, enabled=True)
    deliveries = [
        Delivery.objects.create(rule=rule, event=event, summary=doc["summary"], payload=doc)
        for rule in rules
        if rule.enabled and (event in rule.events or event == "test")
    ]
    for delivery in deliveries:
        queue(delivery.pk)
    return deliveries


def queue(pk: int, countdown: float = 0) -> None:
    """Send the delivery's task after commit. A broker that refuses it loses nothing:
    the periodic pass (``send_due``) sends what is due and was not sent."""
    from .tasks import deliver

    def send() -> None:
        try:
            deliver.apply_async((pk,), countdown=countdown)
        except Exception as exc:
            log.warning("delivery %s not queued (%s); the periodic pass sends it", pk, exc)

    transaction.on_commit(send)


def on_job_finished(sender, row, **_) -> None:
    """The ``job_finished`` receiver. It never raises: the job is already over."""
    try:
        found = job_event(row)
        if found is not None:
            notify(row.workspace, *found)
    except Exception:
        log.exception("could not queue the notifications of %s %s", type(row).__name__, row.pk)
