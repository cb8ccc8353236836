from django.contrib import admin

from palette_site.admin_tools import OperationAdmin

from . import models


@admin.register(models.Backup)
class BackupAdmin(OperationAdmin):
    list_display = (
        "name",
        "cluster_name",
        "status",
        "created_at",
        "expires_at",
        "size_bytes",
        "location",
    )
    list_filter = ("status", "source", "location", "created_at")
    search_fields = ("name", "cluster_name")


@admin.register(models.Restore)
class RestoreAdmin(OperationAdmin):
    list_display = (
        "name",
        "backup_name",
        "target_cluster_name",
        "status",
        "created_at",
        "failed_count",
    )
    list_filter = ("status", "is_preview", "existing_policy", "created_at")
    search_fields = ("name", "backup_name", "target_cluster_name")


@admin.register(models.EtcdSnapshot)
class EtcdSnapshotAdmin(OperationAdmin):
    list_display = (
        "name",
        "cluster_name",
        "status",
        "created_at",
        "size_bytes",
        "revision",
        "location",
    )
    search_fields = ("name", "cluster_name")


@admin.register(models.Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    list_display = ("prefix", "workspace", "cluster", "preset", "cron", "paused", "next_run_at")
    list_filter = ("paused", "preset", "workspace")
    search_fields = ("prefix", "cluster__name", "workspace__name")
    list_select_related = ("workspace", "cluster")


@admin.register(models.EtcdPolicy)
class EtcdPolicyAdmin(admin.ModelAdmin):
    list_display = ("cluster", "enabled", "cron", "keep", "location", "last_run_at", "last_status")
    list_filter = ("enabled", "last_status")
    search_fields = ("cluster__name",)
    list_select_related = ("cluster", "location")


@admin.register(models.RestoreItem)
class RestoreItemAdmin(admin.ModelAdmin):
    list_display = ("restore", "resource", "namespace", "name", "outcome")
    list_filter = ("outcome",)
    search_fields = ("name", "namespace", "resource", "restore__name")
    list_select_related = ("restore",)
