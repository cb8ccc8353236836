"""Restores: start one (or its dry-run preview), read it with its per-item results,
confirm a preview (once)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from backups.forms import RestoreForm
from backups.jobs import confirm_preview, start_restore
from backups.models import Backup, Restore, RestoreItem
from backups.models.options import ClusterResources
from backups.views.restores import backup_namespaces, check_target
from workspaces.access import clusters_for
from workspaces.models import Cluster
from workspaces.roles import Action

from .. import filters, forms
from .. import serializers as api_serializers
from .base import Scoped

RESTORE_BODY = inline_serializer(
    "RestoreCreate",
    {
        "backup": serializers.IntegerField(help_text="The backup's id"),
        "target_cluster": serializers.CharField(
            help_text="The name of the cluster to restore into"
        ),
        "preview": serializers.BooleanField(
            required=False, default=False, help_text="A server-side dry run; confirm it after"
        ),
        "include_namespaces": serializers.ListField(child=serializers.CharField(), required=False),
        "namespace_mapping": serializers.DictField(
            child=serializers.CharField(), required=False, help_text='{"source": "target"}'
        ),
        "include_resources": serializers.ListField(child=serializers.CharField(), required=False),
        "exclude_resources": serializers.ListField(child=serializers.CharField(), required=False),
        "label_selector": serializers.CharField(required=False),
        "cluster_resources": serializers.ChoiceField(
            choices=ClusterResources.choices, required=False
        ),
        "restore_pvs": serializers.BooleanField(required=False),
        "preserve_node_ports": serializers.BooleanField(required=False),
        "existing_policy": serializers.ChoiceField(choices=["none", "update"], required=False),
    },
)
RESTORE_FIELDS = {"backup", "preview", *RestoreForm.base_fields}
RESTORE_DEFAULTS = {"cluster_resources": "auto", "existing_policy": "none"}


class RestoreViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, Scoped):
    model = Restore
    related = ("workspace", "created_by")
    serializer_class = api_serializers.RestoreSerializer
    filterset_class = filters.RestoreFilter
    ordering_fields = ["created_at", "finished_at", "name"]
    ordering = ["-created_at", "-id"]
    search_fields = ["name", "backup_name", "target_cluster_name"]

    @extend_schema(request=RESTORE_BODY, responses={201: api_serializers.RestoreSerializer})
    def create(self, request):
        """Restore a backup into a cluster, or preview it (``"preview": true``)."""
        data = forms.body(request)
        forms.unknown_fields(data, RESTORE_FIELDS)
        backup = self._backup(data.get("backup"))
        if not clusters_for(request.user, Action.RESTORE).exists():
            raise PermissionDenied("Your role does not allow restoring into any cluster.")
        preview = data.pop("preview", False)
        if not isinstance(preview, bool):
            raise exceptions.ValidationError({"preview": ["Must be true or false."]})
        targets = Cluster.objects.restrict(request.user, Action.RESTORE)
        values = forms.as_form_data(
            {**RESTORE_DEFAULTS, **data}, RestoreForm, names={"target_cluster": targets}
        )
        namespaces, _ = backup_namespaces(backup)
        form = RestoreForm(values, user=request.user, backup=backup, namespaces=namespaces)
        if not form.is_valid():
            raise forms.invalid(form)
        target = form.cleaned_data["target_cluster"]
        check_target(request.user, target)
        restore = start_restore(backup, target, by=request.user, preview=preview, **form.options())
        restore = self.get_queryset().get(pk=restore.pk)
        return Response(self.get_serializer(restore).data, status=status.HTTP_201_CREATED)

    def _backup(self, pk) -> Backup:
        if isinstance(pk, bool) or not isinstance(pk, int):
            raise exceptions.ValidationError({"backup": ["A backup's id (a number)."]})
        backup = (
            Backup.objects.restrict(self.request.user)
            .select_related("location")
            .filter(pk=pk)
            .first()
        )
        if backup is None:
            raise exceptions.ValidationError({"backup": [f"No backup {pk} that you may see."]})
        return backup

    @extend_schema(request=None, responses={200: api_serializers.RestoreSerializer,
                                            201: api_serializers.RestoreSerializer})  # fmt: skip
    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None):
        """Run for real what a completed preview showed. 201 with the new restore;
        200 with the same restore when it was confirmed before (never a second one)."""
        preview = self.get_object()
        if not preview.is_preview:
            raise exceptions.ValidationError(
                {"non_field_errors": ["Only a preview can be confirmed."]}
            )
        if preview.target_cluster is not None:
            check_target(request.user, preview.target_cluster)
        restore, started = confirm_preview(preview, by=request.user)
        restore = self.get_queryset().get(pk=restore.pk)
        code = status.HTTP_201_CREATED if started else status.HTTP_200_OK
        return Response(self.get_serializer(restore).data, status=code)


class RestoreItemViewSet(mixins.ListModelMixin, Scoped):
    """``/restores/<id>/items/``: what happened to each object of a restore (created,
    updated, skipped and why, failed and why); 404 for a restore out of scope."""

    model = RestoreItem
    serializer_class = api_serializers.RestoreItemSerializer
    filterset_class = filters.RestoreItemFilter
    ordering_fields = ["id", "resource", "namespace", "name", "outcome"]
    ordering = ["id"]
    search_fields = ["name", "resource"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator
            return RestoreItem.objects.none()
        restores = Restore.objects.restrict(self.request.user)
        restore = get_object_or_404(restores, pk=self.kwargs["restore_pk"])
        return restore.items.restrict(self.request.user)
