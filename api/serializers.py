"""What the API shows of each object. Writes go through the pages' forms (api/forms.py)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from backups.models import (
    Backup,
    BackupRun,
    EtcdPolicy,
    EtcdSnapshot,
    Restore,
    RestoreItem,
    Schedule,
    Status,
)
from locations.models import BackupLocation
from workspaces.models import AuditEvent, Cluster, Workspace

# Velero's phase names for a job's status (the API's ``phase``); the console's own
# status is there too as ``status``. Velero has no "cancelled": a cancelled job
# did not complete, which is what a script waiting for the end needs to know.
VELERO_PHASE = {
    Status.PENDING: "New",
    Status.RUNNING: "InProgress",
    Status.COMPLETED: "Completed",
    Status.PARTIALLY_FAILED: "PartiallyFailed",
    Status.FAILED: "Failed",
    Status.CANCELLED: "Failed",
}


def name_of():
    """A related object shown by its name."""
    return serializers.SlugRelatedField(slug_field="name", read_only=True)


class UserName(serializers.SlugRelatedField):
    def __init__(self, **kwargs):
        super().__init__(slug_field="username", read_only=True, **kwargs)


class WorkspaceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Workspace
        fields = ["id", "name", "slug", "description", "created_at"]


class ClusterSerializer(serializers.ModelSerializer):
    workspace = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    has_etcd = serializers.BooleanField(read_only=True)

    class Meta:
        model = Cluster
        # Never the kubeconfig nor the etcd client key.
        fields = [
            "id", "name", "workspace", "description", "health", "health_message",
            "server_version", "node_count", "namespace_count", "namespaces",
            "last_checked_at", "has_etcd", "etcd_endpoint", "created_at",
        ]  # fmt: skip


class LocationSerializer(serializers.ModelSerializer):
    workspace = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    has_credentials = serializers.SerializerMethodField()

    class Meta:
        model = BackupLocation
        # Secrets are write-only: the credentials never leave the server.
        fields = [
            "id", "name", "workspace", "is_default", "provider", "bucket", "prefix", "region",
            "endpoint_url", "force_path_style", "path", "credential_mode", "role_arn",
            "external_id", "status", "status_message", "last_validated_at", "has_credentials",
            "created_at", "updated_at",
        ]  # fmt: skip

    def get_has_credentials(self, location: BackupLocation) -> bool:
        return bool(location.credentials)


class OperationSerializer(serializers.ModelSerializer):
    """The fields every job has."""

    phase = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    created_by = UserName()

    OPERATION_FIELDS = [
        "id", "name", "status", "phase", "progress", "items_done", "items_total",
        "error", "created_by", "created_at", "started_at", "finished_at",
    ]  # fmt: skip

    @extend_schema_field(serializers.ChoiceField(choices=sorted(set(VELERO_PHASE.values()))))
    def get_phase(self, job) -> str:
        return VELERO_PHASE[job.status]

    def get_progress(self, job) -> int:
        """Percent of items done (100 once completed)."""
        return job.progress_percent


class ImportedFrom(serializers.Serializer):
    """An imported backup's provenance (``backups/provenance.py``); ``{}`` for the
    console's own. Every key is left out when its velero-backup.json did not say."""

    writer = serializers.ChoiceField(choices=["velero", "console"], required=False)
    storage_location = serializers.CharField(
        required=False, help_text="Velero's storage location (label velero.io/storage-location)."
    )
    schedule = serializers.CharField(required=False, help_text="label velero.io/schedule-name")
    cluster = serializers.CharField(required=False, help_text="label palette.io/cluster-name")
    kubernetes_version = serializers.CharField(required=False)


class BackupSerializer(OperationSerializer):
    workspace = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    location = name_of()
    cluster = serializers.CharField(source="cluster_name", read_only=True)
    ttl = serializers.SerializerMethodField()
    imported_from = ImportedFrom(read_only=True)
    provenance = serializers.CharField(
        read_only=True, help_text="Where an imported backup came from, in words; empty otherwise."
    )

    class Meta:
        model = Backup
        fields = [
            *OperationSerializer.OPERATION_FIELDS,
            "workspace", "cluster", "location", "schedule", "source", "kubernetes_version",
            "expires_at", "size_bytes", "sha256", "errors_count", "warnings_count",
            "include_namespaces", "exclude_namespaces", "include_resources",
            "exclude_resources", "cluster_resources", "label_selector", "include_disks", "ttl",
            "imported_from", "provenance",
        ]  # fmt: skip

    def get_ttl(self, backup) -> str:
        return f"{int(backup.ttl.total_seconds() // 3600)}h"


class RestoreSerializer(OperationSerializer):
    workspace = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    backup = serializers.PrimaryKeyRelatedField(read_only=True)
    target_cluster = serializers.CharField(source="target_cluster_name", read_only=True)
    preview = serializers.BooleanField(source="is_preview", read_only=True)

    class Meta:
        model = Restore
        fields = [
            *OperationSerializer.OPERATION_FIELDS,
            "workspace", "backup", "backup_name", "source_cluster_name", "target_cluster",
            "preview", "include_namespaces", "exclude_namespaces", "namespace_mapping",
            "include_resources", "exclude_resources", "label_selector", "cluster_resources",
            "restore_pvs", "preserve_node_ports", "existing_policy", "created_count",
            "updated_count", "skipped_count", "failed_count", "warnings_count",
        ]  # fmt: skip


class RestoreItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = RestoreItem
        fields = ["id", "resource", "namespace", "name", "outcome", "message"]


class ScheduleSerializer(serializers.ModelSerializer):
    workspace = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    cluster = name_of()
    location = name_of()
    expression = serializers.CharField(read_only=True)
    ttl = serializers.SerializerMethodField()

    class Meta:
        model = Schedule
        fields = [
            "id", "prefix", "workspace", "cluster", "location", "preset", "cron", "expression",
            "paused", "next_run_at", "last_run_at", "last_result", "include_namespaces",
            "exclude_namespaces", "include_resources", "exclude_resources", "cluster_resources",
            "label_selector", "include_disks", "ttl", "created_at",
        ]  # fmt: skip

    def get_ttl(self, schedule) -> str:
        return f"{int(schedule.ttl.total_seconds() // 3600)}h"


class RunSerializer(serializers.ModelSerializer):
    """A schedule's firing: the backups it started and the clusters it skipped."""

    backups = serializers.SerializerMethodField()
    skipped = serializers.SerializerMethodField()

    class Meta:
        model = BackupRun
        fields = ["id", "schedule", "started_at", "backups", "skipped"]

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_backups(self, run) -> list[int]:
        return [backup.pk for backup in self.context["backups"]]

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_skipped(self, run) -> list:
        return getattr(run, "shown_skipped", run.skipped)


class EtcdSnapshotSerializer(OperationSerializer):
    workspace = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    cluster = serializers.CharField(source="cluster_name", read_only=True)
    location = name_of()

    class Meta:
        model = EtcdSnapshot
        fields = [
            *OperationSerializer.OPERATION_FIELDS,
            "workspace", "cluster", "location", "size_bytes", "sha256", "revision",
            "etcd_version", "member", "scheduled",
        ]  # fmt: skip


class EtcdPolicySerializer(serializers.ModelSerializer):
    cluster = name_of()
    location = name_of()

    class Meta:
        model = EtcdPolicy
        fields = [
            "id", "cluster", "enabled", "cron", "keep", "location", "next_run_at",
            "last_run_at", "last_status", "last_error",
        ]  # fmt: skip


class AuditEventSerializer(serializers.ModelSerializer):
    workspace = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    cluster = name_of()

    class Meta:
        model = AuditEvent
        fields = [
            "id", "at", "actor_name", "action", "object_type", "object_id", "object_repr",
            "workspace", "cluster", "detail",
        ]  # fmt: skip
