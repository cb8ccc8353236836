"""The API's routes: ``/api/v1/...``, the OpenAPI schema and its reference page."""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny
from rest_framework.routers import DefaultRouter

from .views import backups, core, etcd, locations, restores, schedules


class Router(DefaultRouter):
    include_root_view = False  # the schema and /api/docs/ describe the API
    include_format_suffixes = False


router = Router()
router.register("workspaces", core.WorkspaceViewSet, basename="workspace")
router.register("clusters", core.ClusterViewSet, basename="cluster")
router.register("locations", locations.LocationViewSet, basename="location")
router.register("backups", backups.BackupViewSet, basename="backup")
router.register("restores", restores.RestoreViewSet, basename="restore")
router.register("schedules", schedules.ScheduleViewSet, basename="schedule")
router.register("etcd-snapshots", etcd.EtcdSnapshotViewSet, basename="etcd-snapshot")
router.register("etcd-policies", etcd.EtcdPolicyViewSet, basename="etcd-policy")
router.register("audit-events", core.AuditEventViewSet, basename="audit-event")

v1 = [
    *router.urls,
    path(
        "restores/<int:restore_pk>/items/",
        restores.RestoreItemViewSet.as_view({"get": "list"}),
        name="restore-items",
    ),
]

app_name = "api"
urlpatterns = [
    path("v1/", include(v1)),
    # The schema and its reference page describe the API, not anyone's data: public.
    path("schema/", SpectacularAPIView.as_view(permission_classes=[AllowAny]), name="schema"),
    # The split view serves its start-up script from a URL of its own: the site's
    # Content-Security-Policy allows no inline script.
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api:schema",
            permission_classes=[AllowAny],
            template_name="api/swagger_ui.html",
        ),
        name="docs",
    ),
]
