"""etcd snapshots (list, get, take one now, download) and the per-cluster policies."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from backups.engine.storage.base import StorageError
from backups.etcd_policy import snapshot_location
from backups.jobs import start_snapshot
from backups.models import EtcdPolicy, EtcdSnapshot
from backups.views.download import download
from backups.views.etcd import PolicyForm
from locations.models import BackupLocation
from workspaces.roles import Action

from .. import filters, forms
from .. import serializers as api_serializers
from .backups import StoreUnavailable, cluster_named
from .base import Scoped


class EtcdSnapshotViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, Scoped):
    model = EtcdSnapshot
    related = ("workspace", "location", "created_by")
    serializer_class = api_serializers.EtcdSnapshotSerializer
    filterset_class = filters.EtcdSnapshotFilter
    ordering_fields = ["created_at", "finished_at", "size_bytes", "revision"]
    ordering = ["-created_at", "-id"]
    search_fields = ["name", "cluster_name"]

    @extend_schema(
        request=inline_serializer("EtcdSnapshotCreate", {"cluster": serializers.CharField()}),
        responses={201: api_serializers.EtcdSnapshotSerializer},
    )
    def create(self, request):
        """Take a snapshot of a cluster's etcd now, into its policy's location."""
        data = forms.body(request)
        forms.unknown_fields(data, {"cluster"})
        cluster = cluster_named(request.user, data)
        self.require(Action.SNAPSHOT, cluster, "take etcd snapshots")
        snapshot = start_snapshot(cluster, snapshot_location(cluster), by=request.user)
        snapshot = self.get_queryset().get(pk=snapshot.pk)
        return Response(self.get_serializer(snapshot).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
        parameters=[OpenApiParameter("format", exclude=True)],
    )
    @action(detail=True)
    def download(self, request, pk=None):
        """The snapshot file, streamed; Operators and Admins only (it holds every Secret)."""
        snapshot = self.get_object()
        filename = f"{snapshot.name}.db"
        try:
            return download(
                request.user, snapshot, snapshot.object_key, filename, "application/octet-stream"
            )
        except StorageError as exc:
            raise StoreUnavailable(f"Cannot download {filename}: {exc}") from None


POLICY_BODY = inline_serializer(
    "EtcdPolicyWrite",
    {
        "enabled": serializers.BooleanField(required=False),
        "cron": serializers.CharField(required=False),
        "keep": serializers.IntegerField(required=False),
        "location": serializers.CharField(
            required=False, allow_null=True, help_text="A location's name; null: the default"
        ),
    },
)


class EtcdPolicyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, Scoped):
    model = EtcdPolicy
    related = ("cluster", "location")
    serializer_class = api_serializers.EtcdPolicySerializer
    filterset_class = filters.EtcdPolicyFilter
    ordering_fields = ["next_run_at", "id"]
    ordering = ["id"]
    http_method_names = ["get", "patch", "head", "options"]

    @extend_schema(request=POLICY_BODY)
    def partial_update(self, request, pk=None):
        """Change the schedule, the copies kept, the location, or turn it off (Admins)."""
        policy = self.get_object()
        self.require(Action.MANAGE, policy, "change etcd backups")
        data = forms.body(request)
        forms.unknown_fields(data, set(PolicyForm.base_fields))
        current = {
            "enabled": policy.enabled,
            "cron": policy.cron,
            "keep": policy.keep,
            "location": policy.location_id,
        }
        usable = BackupLocation.objects.restrict(request.user, Action.BACKUP)
        values = forms.as_form_data({**current, **data}, PolicyForm, names={"location": usable})
        form = PolicyForm(values, instance=policy, user=request.user)
        if not form.is_valid():
            raise forms.invalid(form)
        policy = form.save_by(request.user)
        return Response(self.get_serializer(self.get_queryset().get(pk=policy.pk)).data)
