"""Every URL of the console, in one place."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from api import account
from backups.views import backup as backup_views
from backups.views import etcd, jobs, modifiers, restores, schedules
from backups.views import lists as backups
from locations import views as locations
from metrics.views import metrics
from notifications import views as notifications
from workspaces.views import clusters, dashboard, grants, workspaces

admin.site.site_header = "Backup console: support"
admin.site.site_title = "Backup console admin"

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("workspaces/", workspaces.workspace_list, name="workspace_list"),
    path("workspaces/new/", workspaces.workspace_create, name="workspace_create"),
    path("workspaces/<slug:slug>/", workspaces.workspace_detail, name="workspace_detail"),
    path("workspaces/<slug:slug>/members/", workspaces.member_grant, name="member_grant"),
    path(
        "workspaces/<slug:slug>/members/<int:membership_id>/revoke/",
        workspaces.member_revoke,
        name="member_revoke",
    ),
    path("workspaces/<slug:slug>/audit/", workspaces.workspace_audit, name="workspace_audit"),
    path(
        "workspaces/<slug:slug>/clusters/new/", clusters.cluster_register, name="cluster_register"
    ),
    path("clusters/<str:name>/", clusters.cluster_detail, name="cluster_detail"),
    path("clusters/<str:name>/edit/", clusters.cluster_edit, name="cluster_edit"),
    path("clusters/<str:name>/access/", grants.cluster_access, name="cluster_access"),
    path("clusters/<str:name>/access/revoke/", grants.cluster_revoke, name="cluster_access_revoke"),
    path("teams/", grants.team_list, name="team_list"),
    path("teams/<int:pk>/", grants.team_detail, name="team_detail"),
    path("clusters/<str:name>/health/", clusters.cluster_check_health, name="cluster_health"),
    path("clusters/<str:name>/delete/", clusters.cluster_delete, name="cluster_delete"),
    path("locations/", locations.location_list, name="location_list"),
    path("locations/new/", locations.location_create, name="location_create"),
    path("locations/fields/", locations.location_fields, name="location_fields"),
    path("locations/<int:pk>/", locations.location_detail, name="location_detail"),
    path("locations/<int:pk>/edit/", locations.location_edit, name="location_edit"),
    path("locations/<int:pk>/validate/", locations.location_validate, name="location_validate"),
    path("locations/<int:pk>/delete/", locations.location_delete, name="location_delete"),
    path("locations/<int:pk>/grants/", locations.location_grant, name="location_grant"),
    path("locations/<int:pk>/grants/revoke/", locations.location_revoke, name="location_revoke"),
    path("backups/", backups.backup_list, name="backup_list"),
    path("backups/delete/", backups.backup_bulk_delete, name="backup_bulk_delete"),
    path("clusters/<str:name>/backups/", backup_views.cluster_backups, name="cluster_backups"),
    path("clusters/<str:name>/backups/new/", backup_views.backup_create, name="backup_create"),
    path("clusters/<str:name>/schedules/", schedules.cluster_schedules, name="cluster_schedules"),
    path(
        "clusters/<str:name>/schedules/new/",
        schedules.schedule_create_for_cluster,
        name="schedule_create_cluster",
    ),
    path(
        "workspaces/<slug:slug>/schedules/new/",
        schedules.schedule_create_for_workspace,
        name="schedule_create_workspace",
    ),
    path("workspaces/<slug:slug>/backup/", schedules.workspace_backup, name="workspace_backup"),
    path("schedules/", schedules.schedule_list, name="schedule_list"),
    path("schedules/<int:pk>/run/", schedules.schedule_run, name="schedule_run"),
    path("schedules/calendar/", schedules.schedule_calendar, name="schedule_calendar"),
    path("schedules/preview/", schedules.schedule_preview, name="schedule_preview"),
    path("schedules/<int:pk>/", schedules.schedule_detail, name="schedule_detail"),
    path("schedules/<int:pk>/edit/", schedules.schedule_edit, name="schedule_edit"),
    path("schedules/<int:pk>/pause/", schedules.schedule_pause, name="schedule_pause"),
    path("schedules/<int:pk>/delete/", schedules.schedule_delete, name="schedule_delete"),
    path("runs/<int:pk>/", schedules.backup_run_detail, name="backup_run_detail"),
    path("runs/<int:pk>/restore/", schedules.backup_run_restore, name="backup_run_restore"),
    path("backups/<int:pk>/", backup_views.backup_detail, name="backup_detail"),
    path("backups/<int:pk>/status/", jobs.job_status, {"kind": "backup"}, name="backup_status"),
    path("backups/<int:pk>/contents/", backup_views.backup_contents, name="backup_contents"),
    path("backups/<int:pk>/item/", backup_views.backup_item, name="backup_item"),
    path("backups/<int:pk>/download/", backup_views.backup_download, name="backup_download"),
    path("backups/<int:pk>/delete/", backup_views.backup_delete, name="backup_delete"),
    path("backups/<int:pk>/copy/", backup_views.backup_copy, name="backup_copy"),
    path("restores/", backups.restore_list, name="restore_list"),
    path("restores/<int:pk>/", restores.restore_detail, name="restore_detail"),
    path("restores/<int:pk>/status/", jobs.job_status, {"kind": "restore"}, name="restore_status"),
    path("restores/<int:pk>/confirm/", restores.restore_confirm, name="restore_confirm"),
    path("restores/<int:pk>/rerun/", restores.restore_rerun, name="restore_rerun"),
    path("backups/<int:pk>/restore/", restores.restore_wizard, name="restore_wizard"),
    path("clusters/<str:name>/restores/", restores.cluster_restores, name="cluster_restores"),
    path("etcd/", backups.etcd_snapshot_list, name="etcd_snapshot_list"),
    path("etcd/<int:pk>/", etcd.etcd_snapshot_detail, name="etcd_snapshot_detail"),
    path(
        "etcd/<int:pk>/status/",
        jobs.job_status,
        {"kind": "etcd_snapshot"},
        name="etcd_snapshot_status",
    ),
    path("etcd/<int:pk>/download/", etcd.etcd_snapshot_download, name="etcd_snapshot_download"),
    path("etcd/<int:pk>/delete/", etcd.etcd_snapshot_delete, name="etcd_snapshot_delete"),
    path("etcd/<int:pk>/restore/", etcd.etcd_restore_create, name="etcd_restore_create"),
    path("etcd/restores/<int:pk>/", etcd.etcd_restore_detail, name="etcd_restore_detail"),
    path("clusters/<str:name>/etcd/", etcd.cluster_etcd, name="cluster_etcd"),
    path("clusters/<str:name>/etcd/policy/", etcd.etcd_policy_edit, name="etcd_policy_edit"),
    path(
        "clusters/<str:name>/etcd/snapshot/", etcd.etcd_snapshot_create, name="etcd_snapshot_create"
    ),
    path("jobs/<str:kind>/<int:pk>/cancel/", jobs.job_cancel, name="job_cancel"),
    path("admin/", admin.site.urls),
    # resource modifier sets (#20)
    path(
        "workspaces/<slug:slug>/modifiers/", modifiers.modifier_set_list, name="modifier_set_list"
    ),
    path(
        "workspaces/<slug:slug>/modifiers/new/",
        modifiers.modifier_set_create,
        name="modifier_set_create",
    ),
    path("modifiers/<int:pk>/", modifiers.modifier_set_detail, name="modifier_set_detail"),
    path("modifiers/<int:pk>/delete/", modifiers.modifier_set_delete, name="modifier_set_delete"),
    path(
        "workspaces/<slug:slug>/notifications/", notifications.rule_list, name="notification_rules"
    ),
    path(
        "workspaces/<slug:slug>/notifications/<int:pk>/test/",
        notifications.rule_test,
        name="notification_rule_test",
    ),
    path(
        "workspaces/<slug:slug>/notifications/<int:pk>/delete/",
        notifications.rule_delete,
        name="notification_rule_delete",
    ),
    path("metrics", metrics, name="metrics"),
    path("oidc/", include("sso.urls")),
    path("api/", include("api.urls")),
    path("account/tokens/", account.token_list, name="token_list"),
    path("account/tokens/new/", account.token_create, name="token_create"),
    path("account/tokens/<int:pk>/revoke/", account.token_revoke, name="token_revoke"),
]
