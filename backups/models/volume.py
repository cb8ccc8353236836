"""What became of each volume of a backup or restore, and of each hook that ran."""

from __future__ import annotations

from django.db import models

from workspaces.access import JobDetailQuerySet

from ..charts import seconds_text


class VolumeResult(models.Model):
    """One claim of a backup (or restore): how its data was captured or brought back.

    Exactly one of ``backup`` and ``restore`` is set. The row moves while the job runs
    (bytes done of total), so the page can show it live."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    METHODS = {
        "snapshot": "CSI snapshot",
        "copy": "Copy into the location",
        "snapshot_and_copy": "CSI snapshot and copy",
        "": "None",
    }

    backup = models.ForeignKey(
        "backups.Backup", null=True, blank=True, on_delete=models.CASCADE, related_name="volumes"
    )
    restore = models.ForeignKey(
        "backups.Restore", null=True, blank=True, on_delete=models.CASCADE, related_name="volumes"
    )
    namespace = models.CharField(max_length=253)
    claim = models.CharField(max_length=253)
    storage_class = models.CharField(max_length=253, blank=True)
    capacity = models.CharField(max_length=40, blank=True)
    method = models.CharField(max_length=20, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    reason = models.TextField(blank=True)
    bytes_done = models.BigIntegerField(default=0)
    bytes_total = models.BigIntegerField(default=0)
    snapshot_name = models.CharField(max_length=253, blank=True)
    copy_sha256 = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = JobDetailQuerySet.as_manager()

    class Meta:
        ordering = ["namespace", "claim", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["backup", "namespace", "claim"], name="volume_once_per_backup"
            ),
            models.UniqueConstraint(
                fields=["restore", "namespace", "claim"], name="volume_once_per_restore"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.claim}: {self.state}"

    @property
    def method_text(self) -> str:
        return self.METHODS.get(self.method, self.method)

    @property
    def velero_reads(self) -> str:
        """What Velero can restore of this volume from the backup (``velero_info.py``):
        the console's CSI snapshots, never its tar copies."""
        if self.state != self.State.SUCCEEDED or not self.method:
            return "Nothing: no volume data was kept"
        if self.method == "snapshot":
            return "Yes: the CSI snapshot, as its own"
        if self.method == "snapshot_and_copy":
            return "The CSI snapshot, yes; the tar copy, no (the console's own)"
        return "No: the copy is the console's own tar; Velero makes the claim a new empty volume"

    @property
    def percent(self) -> int:
        if self.state == self.State.SUCCEEDED:
            return 100
        if not self.bytes_total:
            return 0
        return min(100, int(100 * self.bytes_done / self.bytes_total))

    @property
    def duration_text(self) -> str:
        if not (self.started_at and self.finished_at):
            return ""
        return seconds_text((self.finished_at - self.started_at).total_seconds())


class HookResult(models.Model):
    """One Velero-annotated hook run in a pod: its exit code and the tail of its output."""

    backup = models.ForeignKey(
        "backups.Backup", null=True, blank=True, on_delete=models.CASCADE, related_name="hooks"
    )
    restore = models.ForeignKey(
        "backups.Restore", null=True, blank=True, on_delete=models.CASCADE, related_name="hooks"
    )
    namespace = models.CharField(max_length=253)
    pod = models.CharField(max_length=253)
    container = models.CharField(max_length=253, blank=True)
    phase = models.CharField(max_length=20)  # pre-backup | post-backup | post-restore
    command = models.TextField()
    exit_code = models.IntegerField(null=True, blank=True, help_text="Empty: it could not run")
    output = models.TextField(blank=True)
    ok = models.BooleanField(default=False)
    fail_on_error = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = JobDetailQuerySet.as_manager()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.phase} hook in {self.namespace}/{self.pod}: exit {self.exit_code}"
