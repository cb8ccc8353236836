"""Celery tasks: thin wrappers that take primary keys and call model methods."""

from __future__ import annotations

import logging

from celery import shared_task

from .models import Backup, EtcdSnapshot, Restore

log = logging.getLogger(__name__)


@shared_task
def fail_stale_operations() -> int:
    """Fail running jobs whose worker stopped sending heartbeats (killed, lost)."""
    failed = sum(model.fail_stale() for model in (Backup, Restore, EtcdSnapshot))
    if failed:
        log.warning("marked %d job(s) failed: their worker stopped sending heartbeats", failed)
    return failed
