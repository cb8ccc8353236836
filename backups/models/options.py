"""What to back up: the filters a backup and a schedule share."""

from __future__ import annotations

from datetime import timedelta

from django.db import models

DEFAULT_TTL = timedelta(hours=720)  # Velero's default: 30 days


class ClusterResources(models.TextChoices):
    # Velero's "null": with a namespace filter, only the cluster-wide objects
    # the chosen namespaces need (PVs bound to their claims, the CRDs of their
    # custom resources, cluster role bindings of their service accounts and
    # those roles), plus the namespaces; everything when no filter is set.
    AUTO = "auto", "Auto (what the chosen namespaces need: bound PVs, CRDs, role bindings)"
    ALWAYS = "always", "Always"
    NEVER = "never", "Never"


class BackupOptions(models.Model):
    include_namespaces = models.JSONField(
        default=list, blank=True, help_text="Empty means every namespace."
    )
    exclude_namespaces = models.JSONField(default=list, blank=True)
    include_resources = models.JSONField(
        default=list, blank=True, help_text="Resource names such as deployments.apps; empty = all."
    )
    exclude_resources = models.JSONField(default=list, blank=True)
    cluster_resources = models.CharField(
        max_length=10, choices=ClusterResources.choices, default=ClusterResources.AUTO
    )
    label_selector = models.CharField(max_length=500, blank=True, help_text="e.g. app=shop,tier")
    include_disks = models.BooleanField(
        default=False, help_text="Also back up the data of persistent volumes."
    )

    class VolumeMode(models.TextChoices):
        AUTO = "auto", "Snapshot and copy where the driver can snapshot, else copy"
        SNAPSHOT_AND_COPY = "snapshot_and_copy", "Snapshot and copy"
        SNAPSHOT = "snapshot", "Snapshot only (stays in the cluster)"
        COPY = "copy", "Copy only (into the location)"

    volume_mode = models.CharField(
        max_length=20, choices=VolumeMode.choices, default=VolumeMode.AUTO,
        help_text="With disks: how each claim's data is captured.",
    )  # fmt: skip
    volume_policy = models.JSONField(
        default=dict, blank=True,
        help_text="Per storage class: skip, snapshot, copy or snapshot_and_copy.",
    )  # fmt: skip
    ttl = models.DurationField(default=DEFAULT_TTL, help_text="How long the backup is kept.")

    class Meta:
        abstract = True
