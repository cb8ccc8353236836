"""A run: the backups one schedule firing (or one workspace backup) made together."""

from __future__ import annotations

from django.db import models
from django.urls import reverse

from palette_site.model_fields import user_field
from workspaces.access import BackupRunQuerySet


class BackupRun(models.Model):
    """Groups the backups of one firing, and records what it skipped and why.

    A workspace backup makes one backup per healthy cluster; the clusters it
    skipped are listed in ``skipped`` as ``{"cluster": name, "reason": text}``.
    A schedule firing that was skipped as a whole (its previous backup still
    running) is a run with no backups and one skip record.
    """

    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="backup_runs"
    )
    schedule = models.ForeignKey(
        "backups.Schedule", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    started_at = models.DateTimeField(db_index=True)
    created_by = user_field()
    skipped = models.JSONField(default=list, blank=True)

    objects = BackupRunQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        source = f"schedule {self.schedule.prefix}" if self.schedule_id else "on demand"
        return f"{self.workspace} run of {self.started_at:%Y-%m-%d %H:%M} ({source})"

    def get_absolute_url(self) -> str:
        return reverse("backup_run_detail", args=[self.pk])
