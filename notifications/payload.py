"""What a notification says: one JSON document (the webhook body, schema
``palette.notification/v1``, documented in README.md) and the sentence that
e-mail and Slack carry.

    {
      "schema": "palette.notification/v1",
      "event": "backup.failed",            # an Event value, or "test"
      "occurred_at": "2026-12-01T15:40:00+00:00",
      "workspace": {"slug": "payments", "name": "Payments"},
      "subject": {                          # what it is about; keys by kind
        "kind": "backup",                   # backup | restore | etcd_snapshot | location | schedule | test
        "id": 17, "name": "nightly-prod-20261201000000",
        "cluster": "prod", "status": "failed", "error": "...", "path": "/backups/17/"
      },
      "summary": "Backup nightly-prod-... of cluster prod failed: ..."
    }
"""

from __future__ import annotations

from django.utils import timezone

from backups.models import Backup, EtcdSnapshot, Restore, Status

SCHEMA = "palette.notification/v1"

# The job models that notify, with the kind name their events carry.
KINDS = {Backup: "backup", Restore: "restore", EtcdSnapshot: "etcd_snapshot"}
NOUNS = {"backup": "Backup", "restore": "Restore", "etcd_snapshot": "etcd snapshot"}
OUTCOMES = {
    Status.FAILED: "failed",
    Status.PARTIALLY_FAILED: "partially_failed",
    Status.COMPLETED: "succeeded",
}
OUTCOME_WORDS = {
    "failed": "failed",
    "partially_failed": "partially failed",
    "succeeded": "succeeded",
}


def document(event: str, workspace, subject: dict, summary: str) -> dict:
    return {
        "schema": SCHEMA,
        "event": event,
        "occurred_at": timezone.now().isoformat(),
        "workspace": {"slug": workspace.slug, "name": workspace.name},
        "subject": subject,
        "summary": summary[:500],
    }


def job_event(row) -> tuple[str, dict] | None:
    """(event, document) for a finished job row, or None when it does not notify
    (a cancelled job, a restore preview, an etcd restore)."""
    kind = KINDS.get(type(row))
    outcome = OUTCOMES.get(row.status)
    if kind is None or outcome is None or getattr(row, "is_preview", False):
        return None
    cluster = row.target_cluster_name if kind == "restore" else row.cluster_name
    subject = {
        "kind": kind,
        "id": row.pk,
        "name": row.name,
        "cluster": cluster,
        "status": row.status,
        "error": row.error,
        "path": row.get_absolute_url(),
        "started_at": row.started_at.isoformat() if row.started_at else None,
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
    }
    summary = f"{NOUNS[kind]} {row.name} of cluster {cluster} {OUTCOME_WORDS[outcome]}"
    if row.error:
        summary += f": {row.error}"
    event = f"{kind}.{outcome}"
    return event, document(event, row.workspace, subject, summary)
