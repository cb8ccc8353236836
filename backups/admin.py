from django.contrib import admin, messages
from django.shortcuts import redirect

from backups.engine.words import counted
from locations.object_lock import Locked, refuse_early_delete
from workspaces import audit

from . import models
from .jobs import JobRefused, job_of


class OperationAdmin(admin.ModelAdmin):
    """Backups, restores, snapshots, etcd restores: read-mostly; staff can fail a
    stuck one or cancel one, through its job kind."""

    list_filter = ("status", "created_at")
    readonly_fields = ("started_at", "finished_at", "heartbeat_at", "worker", "created_at")
    date_hierarchy = "created_at"
    actions = ["mark_failed", "cancel"]
    list_select_related = True

    @admin.action(
        description="Mark the selected jobs failed (a running one stops at its next check)"
    )
    def mark_failed(self, request, queryset):
        failed = 0
        for job in queryset:
            if job.mark_failed(f"Marked failed by support ({request.user.get_username()})."):
                audit.record(request.user, "marked failed", job)
                failed += 1
        self.message_user(request, f"{counted(failed, 'job')} marked failed.", messages.SUCCESS)

    @admin.action(description="Cancel the selected jobs")
    def cancel(self, request, queryset):
        cancelled = 0
        for row in queryset:
            try:
                job_of(row).cancel(row, by=request.user)
                cancelled += 1
            except JobRefused as exc:
                self.message_user(request, f"{row}: {exc}", messages.WARNING)
        self.message_user(request, f"{counted(cancelled, 'job')} cancelled.", messages.SUCCESS)


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
    readonly_fields = (*OperationAdmin.readonly_fields, "locked_until", "key_id", "origin")

    def delete_view(self, request, object_id, extra_context=None):
        """A backup whose objects are still locked is not deleted here either: the
        page says until when, and goes back to the backup."""
        backup = self.get_object(request, object_id)
        if backup is not None:
            try:
                refuse_early_delete(backup)
            except Locked as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return redirect("admin:backups_backup_change", backup.pk)
        return super().delete_view(request, object_id, extra_context)

    def delete_queryset(self, request, queryset):
        keep = []
        for backup in queryset:
            try:
                refuse_early_delete(backup)
            except Locked as exc:
                self.message_user(request, str(exc), messages.ERROR)
                keep.append(backup.pk)
        super().delete_queryset(request, queryset.exclude(pk__in=keep))


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


@admin.register(models.EtcdRestore)
class EtcdRestoreAdmin(OperationAdmin):
    list_display = ("snapshot_name", "cluster_name", "status", "created_at", "worker")
    search_fields = ("snapshot_name", "cluster_name")


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


@admin.register(models.ResourceModifierSet)
class ResourceModifierSetAdmin(admin.ModelAdmin):
    list_display = ("name", "workspace", "updated_at", "created_by")
    list_filter = ("workspace",)
    search_fields = ("name", "description", "workspace__name")
    list_select_related = ("workspace", "created_by")
    readonly_fields = ("created_by", "updated_at")
