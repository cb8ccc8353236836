"""Query-parameter filters of the lists: ``?workspace=<slug>&cluster=<name>&status=...``."""

from __future__ import annotations

from django_filters import rest_framework as filters

from backups.models import Backup, EtcdPolicy, EtcdSnapshot, Restore, RestoreItem, Schedule
from locations.models import BackupLocation
from workspaces.models import AuditEvent, Cluster


def _set(model_class, fields: dict[str, str], extra: tuple[str, ...] = ()):
    """A FilterSet of exact filters named as the API names things (``fields``:
    parameter -> model lookup), plus the model's own ``extra`` fields."""
    attrs = {name: filters.CharFilter(field_name=lookup) for name, lookup in fields.items()}
    meta = type("Meta", (), {"model": model_class, "fields": list(extra)})
    return type(f"{model_class.__name__}Filter", (filters.FilterSet,), {**attrs, "Meta": meta})


WORKSPACE = {"workspace": "workspace__slug"}

ClusterFilter = _set(Cluster, WORKSPACE, ("health",))
LocationFilter = _set(BackupLocation, WORKSPACE, ("provider", "status", "is_default"))
BackupFilter = _set(
    Backup,
    {**WORKSPACE, "cluster": "cluster_name", "location": "location__name"},
    ("status", "source", "schedule"),
)
RestoreFilter = _set(
    Restore,
    {**WORKSPACE, "target_cluster": "target_cluster_name"},
    ("status", "backup", "is_preview"),
)
RestoreItemFilter = _set(RestoreItem, {}, ("outcome", "namespace", "resource"))
ScheduleFilter = _set(Schedule, {**WORKSPACE, "cluster": "cluster__name"}, ("paused", "preset"))
EtcdSnapshotFilter = _set(
    EtcdSnapshot, {**WORKSPACE, "cluster": "cluster_name"}, ("status", "scheduled")
)


class AuditEventFilter(filters.FilterSet):
    workspace = filters.CharFilter(field_name="workspace__slug")
    cluster = filters.CharFilter(field_name="cluster__name")
    after = filters.IsoDateTimeFilter(field_name="at", lookup_expr="gte")
    before = filters.IsoDateTimeFilter(field_name="at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["action", "object_type", "actor_name"]


EtcdPolicyFilter = _set(
    EtcdPolicy, {"workspace": "cluster__workspace__slug", "cluster": "cluster__name"}, ("enabled",)
)
