"""etcd snapshots and the per-cluster policy that takes them."""

from __future__ import annotations

from django.db import models
from django.urls import reverse

from workspaces.access import EtcdPolicyQuerySet, OperationQuerySet

from .operation import Operation

DEFAULT_ETCD_CRON = "0 */1 * * *"
DEFAULT_ETCD_KEEP = 12


class EtcdPolicy(models.Model):
    """On by default for every cluster with an etcd endpoint: hourly, keep 12."""

    cluster = models.OneToOneField(
        "workspaces.Cluster", on_delete=models.CASCADE, related_name="etcd_policy"
    )
    enabled = models.BooleanField(default=True)
    cron = models.CharField(max_length=100, default=DEFAULT_ETCD_CRON)
    keep = models.PositiveIntegerField(default=DEFAULT_ETCD_KEEP)
    location = models.ForeignKey(
        "locations.BackupLocation",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="etcd_policies",
    )
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_status = models.CharField(max_length=20, blank=True)
    last_error = models.TextField(blank=True)

    objects = EtcdPolicyQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "etcd policies"

    def __str__(self) -> str:
        state = "on" if self.enabled else "off"
        return f"etcd backups of {self.cluster} ({state}, {self.cron}, keep {self.keep})"


class EtcdSnapshot(Operation):
    """One etcd snapshot streamed from the Maintenance API into a location."""

    name = models.CharField(max_length=253)
    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.PROTECT, related_name="etcd_snapshots"
    )
    cluster = models.ForeignKey(
        "workspaces.Cluster",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="etcd_snapshots",
    )
    cluster_name = models.CharField(max_length=253)
    location = models.ForeignKey(
        "locations.BackupLocation", on_delete=models.PROTECT, related_name="etcd_snapshots"
    )
    object_key = models.CharField(max_length=1024, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    revision = models.BigIntegerField(null=True, blank=True)
    etcd_version = models.CharField(max_length=40, blank=True)
    member = models.CharField(max_length=200, blank=True, help_text="The member it came from")
    scheduled = models.BooleanField(default=False, help_text="Taken by the policy")
    key_id = models.CharField(
        max_length=40, blank=True, help_text="The location's data key that sealed it; empty: plain."
    )

    objects = OperationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["location", "name"], name="etcd_snapshot_unique")
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("etcd_snapshot_detail", args=[self.pk])


class EtcdRestore(Operation):
    """The console running a snapshot's restore runbook on a control plane it can reach.

    Destructive and rare: it is started only after an explicit confirmation, and
    every step it runs is in the log.
    """

    snapshot = models.ForeignKey(
        EtcdSnapshot, null=True, blank=True, on_delete=models.SET_NULL, related_name="restores"
    )
    snapshot_name = models.CharField(max_length=253)
    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.PROTECT, related_name="etcd_restores"
    )
    cluster = models.ForeignKey(
        "workspaces.Cluster",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="etcd_restores",
    )
    cluster_name = models.CharField(max_length=253)

    objects = OperationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"etcd restore of {self.snapshot_name} into {self.cluster_name}"

    def get_absolute_url(self) -> str:
        return reverse("etcd_restore_detail", args=[self.pk])
