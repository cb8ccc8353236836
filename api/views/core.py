"""Workspaces, clusters (read, and a health check now) and the audit trail."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.response import Response

from workspaces.models import AuditEvent, Cluster, Workspace

from .. import filters, serializers
from .base import Scoped


class WorkspaceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, Scoped):
    """The workspaces I may see (a single-cluster grantee sees the cluster's workspace)."""

    model = Workspace
    serializer_class = serializers.WorkspaceSerializer
    lookup_field = "slug"
    lookup_value_regex = "[-a-zA-Z0-9_]+"
    ordering_fields = ["name", "created_at"]
    ordering = ["name"]
    search_fields = ["name", "description"]


class ClusterViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, Scoped):
    """Clusters I may see; registering and editing them is done on the pages."""

    model = Cluster
    related = ("workspace",)
    serializer_class = serializers.ClusterSerializer
    lookup_field = "name"
    lookup_value_regex = "[a-z0-9-]+"  # a cluster name is a DNS label
    filterset_class = filters.ClusterFilter
    ordering_fields = ["name", "created_at", "last_checked_at"]
    ordering = ["name"]
    search_fields = ["name", "description"]

    @extend_schema(request=None, responses=serializers.ClusterSerializer)
    @action(detail=True, methods=["post"])
    def health(self, request, name=None):
        """Connect now and record what was found; any viewer may, as on the page."""
        cluster = self.get_object()
        cluster.check_health()
        return Response(self.get_serializer(cluster).data)


class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, Scoped):
    """Who did what: the events of my workspaces, or about the clusters I may see."""

    model = AuditEvent
    related = ("workspace", "cluster")
    serializer_class = serializers.AuditEventSerializer
    filterset_class = filters.AuditEventFilter
    ordering_fields = ["at", "id"]
    ordering = ["-at", "-id"]
