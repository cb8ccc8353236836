"""Cluster backups and the schedules that make them."""

from __future__ import annotations

from django.db import models
from django.urls import reverse

from palette_site.model_fields import user_field
from workspaces.access import OperationQuerySet, ScheduleQuerySet

from ..cron import next_runs
from .operation import Operation
from .options import BackupOptions

UNKNOWN_CLUSTER = "unknown"  # what sync records when no cluster name can be found


class Backup(Operation, BackupOptions):
    """One backup of one cluster's resources, stored in Velero's format.

    ``workspace`` and ``cluster_name`` are kept on the row so that a backup
    outlives its cluster: it can still be listed, browsed and restored elsewhere.
    """

    class Source(models.TextChoices):
        CONSOLE = "console", "Made by this console"
        IMPORTED = "imported", "Found in the location (read-only)"

    name = models.CharField(max_length=253)
    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.PROTECT, related_name="backups"
    )
    cluster = models.ForeignKey(
        "workspaces.Cluster",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="backups",
    )
    cluster_name = models.CharField(max_length=253)
    location = models.ForeignKey(
        "locations.BackupLocation", on_delete=models.PROTECT, related_name="backups"
    )
    schedule = models.ForeignKey(
        "backups.Schedule", null=True, blank=True, on_delete=models.SET_NULL, related_name="backups"
    )
    run = models.ForeignKey(
        "backups.BackupRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="backups",
    )
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.CONSOLE)
    kubernetes_version = models.CharField(max_length=50, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    errors_count = models.PositiveIntegerField(default=0)
    warnings_count = models.PositiveIntegerField(default=0)
    key_id = models.CharField(
        max_length=40, blank=True, help_text="The location's data key that sealed it; empty: plain."
    )
    locked_until = models.DateTimeField(
        null=True, blank=True, help_text="Its objects are locked in the store until then."
    )
    copied_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="copies"
    )
    origin = models.CharField(
        max_length=400, blank=True, help_text="The backup and location it was copied from."
    )
    imported_from = models.JSONField(
        default=dict,
        blank=True,
        help_text="An imported backup's provenance, from its velero-backup.json: who wrote "
        "it (velero or console) and Velero's storage location, schedule, source cluster "
        "labels and Kubernetes version.",
    )

    objects = OperationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["location", "name"], name="backup_unique_in_location")
        ]
        indexes = [models.Index(fields=["workspace", "-created_at"])]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("backup_detail", args=[self.pk])

    @property
    def provenance(self) -> str:
        """Where an imported backup came from, in words ('' for the console's own)."""
        from ..provenance import describe

        return describe(self.imported_from) if self.source == self.Source.IMPORTED else ""

    @property
    def velero_volume_note(self) -> str:
        """For an imported Velero backup: which of its volume data the console restores."""
        from ..provenance import volume_note

        return volume_note(self.imported_from) if self.source == self.Source.IMPORTED else ""

    @property
    def cluster_text(self) -> str:
        """The cluster column: its name, or for a backup whose cluster nobody recorded
        (Velero does not), where it came from."""
        if self.cluster_name != UNKNOWN_CLUSTER or self.source != self.Source.IMPORTED:
            return self.cluster_name
        from ..provenance import short

        return short(self.imported_from) or self.cluster_name


class Schedule(BackupOptions):
    """Backups made on a timetable, of one cluster or of every cluster in a workspace."""

    class Preset(models.TextChoices):
        WEEKLY = "0 0 * * 0", "Every week on Sunday at midnight"
        FORTNIGHTLY = "0 0 */14 * *", "Every two weeks at midnight"
        MONTHLY = "0 0 1 * *", "Every month on the 1st at midnight"
        BIMONTHLY = "0 0 1 */2 *", "Every two months on the 1st at midnight"
        CUSTOM = "custom", "Custom cron expression"
        NEVER = "never", "Never"

    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="schedules"
    )
    cluster = models.ForeignKey(
        "workspaces.Cluster",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="schedules",
        help_text="Empty: every healthy cluster of the workspace.",
    )
    prefix = models.CharField(max_length=40)
    location = models.ForeignKey(
        "locations.BackupLocation", on_delete=models.PROTECT, related_name="schedules"
    )
    preset = models.CharField(max_length=20, choices=Preset.choices, default=Preset.WEEKLY)
    cron = models.CharField(max_length=100, blank=True)
    paused = models.BooleanField(default=False)
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_result = models.TextField(blank=True)
    # Retention tiers (backups/retention.py), in addition to the TTL; 0 = tier not used.
    keep_last = models.PositiveIntegerField(default=0)
    keep_hourly = models.PositiveIntegerField(default=0)
    keep_daily = models.PositiveIntegerField(default=0)
    keep_weekly = models.PositiveIntegerField(default=0)
    keep_monthly = models.PositiveIntegerField(default=0)
    keep_yearly = models.PositiveIntegerField(default=0)
    copy_to = models.ForeignKey(
        "locations.BackupLocation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="copy_schedules",
        help_text="A second location every backup of the schedule is copied to (3-2-1).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = user_field()

    objects = ScheduleQuerySet.as_manager()

    class Meta:
        ordering = ["prefix"]

    def __str__(self) -> str:
        target = self.cluster.name if self.cluster_id else f"workspace {self.workspace}"
        return f"{self.prefix} ({target})"

    def get_absolute_url(self) -> str:
        return reverse("schedule_detail", args=[self.pk])

    @property
    def expression(self) -> str:
        """The cron expression in force ('' for Never)."""
        if self.preset == self.Preset.NEVER:
            return ""
        return self.cron if self.preset == self.Preset.CUSTOM else self.preset

    def upcoming(self, after, count: int = 5) -> list:
        if not self.expression or self.paused:
            return []
        return next_runs(self.expression, after, count)

    def plan_next(self, after) -> None:
        """Set next_run_at to the first time after ``after`` (None when it never runs)."""
        runs = self.upcoming(after, 1)
        self.next_run_at = runs[0] if runs else None
