"""Backups: list, get, start one (the page's form and job start path), delete,
read its contents, download its archive."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from backups.browse import stored_contents
from backups.engine.storage.base import StorageError
from backups.engine.storage.layout import Layout
from backups.engine.velero.reader import ArchiveError
from backups.forms import TTL_HOURS, BackupForm
from backups.jobs import delete_backup, start_backup
from backups.models import Backup
from backups.models.options import ClusterResources
from backups.views.backup import cluster_namespaces
from backups.views.download import download
from locations.models import BackupLocation
from workspaces.models import Cluster
from workspaces.roles import Action

from .. import filters, forms
from .. import serializers as api_serializers
from .base import Scoped


class StoreUnavailable(exceptions.APIException):
    """The location did not give what was asked (the reason is in ``detail``)."""

    status_code = 502
    default_detail = "The backup location could not be read."
    default_code = "store_unavailable"


def options() -> dict:
    """The backup options a request body may set, as the page's form takes them (a
    schedule's body too): new fields each time, since a field serves one name."""
    return {
        **{name: serializers.ListField(child=serializers.CharField(), required=False)
           for name in ("include_namespaces", "exclude_namespaces", "include_resources",
                        "exclude_resources")},
        "cluster_resources": serializers.ChoiceField(choices=ClusterResources.choices, required=False),
        "label_selector": serializers.CharField(required=False),
        "include_disks": serializers.BooleanField(required=False),
    }  # fmt: skip


def ttl() -> serializers.ChoiceField:
    return serializers.ChoiceField(choices=list(TTL_HOURS), required=False)


BACKUP_BODY = inline_serializer(
    "BackupCreate",
    {
        "cluster": serializers.CharField(help_text="The cluster's name"),
        "location": serializers.CharField(
            required=False, help_text="The location's name; default: the workspace's default"
        ),
        "name": serializers.CharField(required=False),
        "prefix": serializers.CharField(required=False, default="manual"),
        **options(),
        "ttl": ttl(),
    },
)
BACKUP_FIELDS = {"cluster", *BackupForm.base_fields}
# What the page's form starts with, for a field the request leaves out.
BACKUP_DEFAULTS = {"prefix": "manual", "ttl": "720h", "cluster_resources": "auto"}


def cluster_named(user, data: dict, field: str = "cluster") -> Cluster:
    """The cluster a request body names, among those the user may see (else 400)."""
    name = data.get(field)
    if not isinstance(name, str) or not name:
        raise exceptions.ValidationError({field: ["This field is required."]})
    cluster = Cluster.objects.restrict(user).select_related("workspace").filter(name=name).first()
    if cluster is None:
        raise exceptions.ValidationError({field: [f"No cluster {name!r} that you may see."]})
    return cluster


class BackupViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, Scoped
):
    model = Backup
    related = ("workspace", "location", "created_by")
    serializer_class = api_serializers.BackupSerializer
    filterset_class = filters.BackupFilter
    ordering_fields = ["created_at", "finished_at", "name", "size_bytes", "expires_at"]
    ordering = ["-created_at", "-id"]
    search_fields = ["name", "cluster_name"]

    @extend_schema(request=BACKUP_BODY, responses={201: api_serializers.BackupSerializer})
    def create(self, request):
        """Back up a cluster now, with the options of the page's form."""
        data = forms.body(request)
        forms.unknown_fields(data, BACKUP_FIELDS)
        cluster = cluster_named(request.user, data)
        self.require(Action.BACKUP, cluster, "back up this cluster")
        namespaces, _ = cluster_namespaces(cluster)  # as on the page: else the last known
        usable = BackupLocation.objects.restrict(request.user, Action.BACKUP)
        values = forms.as_form_data(
            {**BACKUP_DEFAULTS, **data}, BackupForm, names={"location": usable}
        )
        form = BackupForm(values, user=request.user, cluster=cluster, namespaces=namespaces)
        if "location" not in data and form.fields["location"].initial:
            # No location named: the workspace's default, as the page preselects it
            # (``form.data`` is ``values``, so the form sees it when it validates).
            values["location"] = str(form.fields["location"].initial)
        if not form.is_valid():
            raise forms.invalid(form)
        backup = start_backup(
            cluster, form.cleaned_data["location"], by=request.user, **form.options()
        )
        backup = self.get_queryset().get(pk=backup.pk)
        return Response(self.get_serializer(backup).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, pk=None):
        """Delete the backup from its location, then from the console (Admins)."""
        backup = self.get_object()
        self.require(Action.MANAGE, backup, "delete backups")
        try:
            delete_backup(backup, by=request.user)
        except StorageError as exc:
            raise StoreUnavailable(f"Backup {backup.name} was not deleted: {exc}") from None
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        responses=inline_serializer(
            "BackupContents",
            {
                "results": serializers.DictField(help_text="Errors and warnings, as Velero's"),
                "contents": serializers.ListField(child=serializers.DictField()),
            },
        )
    )
    @action(detail=True)
    def contents(self, request, pk=None):
        """The resource list and the results, read from the location."""
        backup = self.get_object()
        try:
            results, rows = stored_contents(backup)
        except (StorageError, ArchiveError) as exc:
            raise StoreUnavailable(f"Cannot read the backup's contents: {exc}") from None
        contents = [
            {
                "type": row["type"],
                "count": row["count"],
                "namespaces": [
                    {"namespace": ns, "items": items} for ns, items in row["namespaces"]
                ],
            }
            for row in rows
        ]
        return Response({"results": results, "contents": contents})

    @extend_schema(
        responses={(200, "application/gzip"): OpenApiTypes.BINARY},
        parameters=[OpenApiParameter("format", exclude=True)],
    )
    @action(detail=True)
    def download(self, request, pk=None):
        """The archive (Velero's tar.gz), streamed; Operators and Admins only."""
        backup = self.get_object()
        key = Layout(backup.location.prefix).backup_file(backup.name, "archive")
        try:
            return download(request.user, backup, key, f"{backup.name}.tar.gz", "application/gzip")
        except StorageError as exc:
            raise StoreUnavailable(f"Cannot download {backup.name}.tar.gz: {exc}") from None
